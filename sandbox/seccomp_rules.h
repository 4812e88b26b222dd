// The seccomp rule tables, as data: which syscalls the deny-list profile refuses (and how),
// and which the allow-list profile permits. Building the BPF program (libseccomp) is separate
// so the tables can be unit-tested without loading anything.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "sandbox/profile.h"

namespace v4agent::sandbox {

enum class RuleAction { kAllow, kErrno, kKill };

// An argument condition: arg[index] (masked) == / != value.
struct ArgMatch {
  unsigned index = 0;
  enum Op { kEq, kNe, kMaskedEq } op = kEq;
  uint64_t value = 0;
  uint64_t mask = 0;  // kMaskedEq: (arg & mask) == value
};

struct SeccompRule {
  std::string syscall;  // name as libseccomp knows it
  RuleAction action = RuleAction::kErrno;
  int errno_value = 1;         // EPERM unless said otherwise
  std::vector<ArgMatch> args;  // all must hold; empty: always
  std::string why;
};

// Deny-list rules for `network` (socket families other than AF_UNIX are refused when the
// network is off).
std::vector<SeccompRule> DenyListRules(NetworkMode network);
// Allow-list: these syscalls run, everything else fails with ENOSYS, plus the deny-list's
// argument checks on clone, socket, ioctl and personality (EPERM / EACCES).
std::vector<SeccompRule> AllowListRules(NetworkMode network);

// A compiled filter for prctl(PR_SET_SECCOMP): x86-64 only (i386 and x32 calls kill the
// process). Empty for SeccompMode::kOff.
struct SeccompProgram {
  std::vector<uint8_t> bpf;  // struct sock_filter[] bytes
  size_t rules = 0;
};
Result<SeccompProgram> BuildSeccompProgram(SeccompMode mode, NetworkMode network);

}  // namespace v4agent::sandbox
