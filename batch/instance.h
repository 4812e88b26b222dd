// SWE-bench task instances and predictions as the published datasets and the harness write
// them, read unchanged: JSONL or a JSON list of instances (FAIL_TO_PASS / PASS_TO_PASS as
// lists or JSON-encoded strings); predictions as JSONL, a JSON list or an {id: prediction}
// dict. Selection by regex, slice and a deterministic shard of the instance ids. Errors name
// the file, the line or index, and the field. Knows nothing of running or grading.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace v4agent::batch {

struct Instance {
  std::string id;  // instance_id
  std::string repo;
  std::string base_commit;
  std::string problem_statement;
  std::string hints_text;
  std::string version;
  std::string environment_setup_commit;
  std::string patch;       // gold
  std::string test_patch;  // never shown to the agent
  std::vector<std::string> fail_to_pass, pass_to_pass;
};

Result<std::vector<Instance>> LoadInstances(const std::string& path);

struct Selection {
  std::string filter;  // ECMAScript regex searched in instance_id; empty: all
  std::string slice;   // "A:B" over the (filtered) list, Python-style; empty: all
  std::string shard;   // "K/N": the instances whose id hashes to K mod N (0 <= K < N)
};
// Applies filter, then slice, then shard; errors name the bad flag value.
Result<std::vector<Instance>> Select(std::vector<Instance> all, const Selection& selection);
// Which of `n` shards an instance id belongs to (stable across machines and versions).
int ShardOf(const std::string& instance_id, int n);

struct Prediction {
  std::string instance_id;
  std::string model;  // model_name_or_path
  std::string patch;  // model_patch (may be empty)
};
// `path` "gold" gives the instances' gold patches with model "gold".
Result<std::map<std::string, Prediction>> LoadPredictions(const std::string& path,
                                                          const std::vector<Instance>& instances);

// The files a diff touches (the "b/" side; "/dev/null" targets skipped), in order.
std::vector<std::string> FilesInDiff(const std::string& diff);

}  // namespace v4agent::batch
