#include "apps/flags.h"

#include "common/strings.h"

namespace v4agent::apps {

Result<Flags> Flags::Parse(const std::vector<std::string>& args, const FlagSpec& spec) {
  Flags flags;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      flags.has_rest_ = true;
      flags.rest_.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (!StartsWith(a, "--") || a.size() == 2) {
      flags.positional_.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (spec.boolean.count(name)) {
      if (inline_value) return InvalidArgumentError("flag --" + name + " takes no value");
      flags.bools_.insert(name);
    } else if (spec.with_value.count(name)) {
      if (inline_value) {
        flags.values_[name] = *inline_value;
      } else {
        if (i + 1 >= args.size()) return InvalidArgumentError("flag --" + name + " needs a value");
        flags.values_[name] = args[++i];
      }
    } else {
      return InvalidArgumentError("unknown flag --" + name);
    }
  }
  return flags;
}

bool Flags::Has(const std::string& name) const {
  return bools_.count(name) > 0 || values_.count(name) > 0;
}

std::optional<std::string> Flags::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Flags::GetOr(const std::string& name, const std::string& fallback) const {
  auto v = Get(name);
  return v ? *v : fallback;
}

Result<int64_t> Flags::GetInt(const std::string& name, int64_t fallback) const {
  auto v = Get(name);
  if (!v) return fallback;
  int64_t out = 0;
  if (!ParseInt64(*v, &out)) return InvalidArgumentError("--" + name + ": not an integer: " + *v);
  return out;
}

Result<double> Flags::GetDouble(const std::string& name, double fallback) const {
  auto v = Get(name);
  if (!v) return fallback;
  double out = 0;
  if (!ParseDouble(*v, &out)) return InvalidArgumentError("--" + name + ": not a number: " + *v);
  return out;
}

}  // namespace v4agent::apps
