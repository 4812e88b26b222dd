// A small, strict command-line flag parser for subcommands: `--name value`, `--name=value`,
// boolean `--flag`, positional arguments, and everything after `--` kept verbatim.
// Unknown flags are errors (a typo never silently changes behaviour).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace v4agent::apps {

struct FlagSpec {
  std::set<std::string> with_value;  // flags that take a value, without the leading "--"
  std::set<std::string> boolean;     // flags that take none
};

class Flags {
 public:
  static Result<Flags> Parse(const std::vector<std::string>& args, const FlagSpec& spec);

  bool Has(const std::string& name) const;
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& fallback) const;
  // Error names the flag when the value is not an integer / number.
  Result<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  Result<double> GetDouble(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }
  const std::vector<std::string>& rest() const { return rest_; }  // after "--"
  bool has_rest() const { return has_rest_; }

 private:
  std::map<std::string, std::string> values_;
  std::set<std::string> bools_;
  std::vector<std::string> positional_;
  std::vector<std::string> rest_;
  bool has_rest_ = false;
};

}  // namespace v4agent::apps
