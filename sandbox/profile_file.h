// Profiles as JSON files (`sandbox run --profile FILE`): every Profile field by name, unknown
// keys rejected, errors naming the file and key. "${WORKSPACE}" in strings is replaced by
// the workspace path.
#pragma once

#include <string>

#include "common/json.h"
#include "common/status.h"
#include "sandbox/profile.h"

namespace v4agent::sandbox {

Result<Profile> LoadProfileFile(const std::string& path, const std::string& workspace);
Result<Profile> ProfileFromJson(const Json& j, const std::string& source,
                                const std::string& workspace);

}  // namespace v4agent::sandbox
