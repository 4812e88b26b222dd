// The seccomp tables as data: every family the issue names is covered, every rule resolves
// to a syscall libseccomp knows, and both profiles compile. Nothing is loaded here.
#include "sandbox/seccomp_rules.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <set>

namespace v4agent::sandbox {
namespace {

std::set<std::string> Names(const std::vector<SeccompRule>& rules) {
  std::set<std::string> s;
  for (const auto& r : rules) s.insert(r.syscall);
  return s;
}

TEST(SeccompRulesTest, DenyListCoversEveryRequiredFamily) {
  const auto names = Names(DenyListRules(NetworkMode::kNone));
  for (const char* required : {"io_uring_setup",
                               "io_uring_enter",
                               "io_uring_register",
                               "ptrace",
                               "process_vm_readv",
                               "process_vm_writev",
                               "mount",
                               "umount2",
                               "pivot_root",
                               "move_mount",
                               "open_tree",
                               "fsopen",
                               "unshare",
                               "setns",
                               "clone",
                               "clone3",
                               "keyctl",
                               "add_key",
                               "bpf",
                               "perf_event_open",
                               "userfaultfd",
                               "kexec_load",
                               "kexec_file_load",
                               "init_module",
                               "finit_module",
                               "delete_module",
                               "open_by_handle_at",
                               "personality",
                               "ioctl",
                               "socket"}) {
    EXPECT_TRUE(names.count(required)) << required;
  }
  for (const auto& r : DenyListRules(NetworkMode::kNone)) {
    EXPECT_NE(r.action, RuleAction::kAllow) << r.syscall;
    EXPECT_FALSE(r.why.empty()) << r.syscall;
    if (r.syscall == "clone3") {
      EXPECT_EQ(r.errno_value, ENOSYS);
    }
  }
}

TEST(SeccompRulesTest, SocketRulesFollowTheNetworkMode) {
  auto socket_rules = [](NetworkMode m) {
    std::vector<SeccompRule> out;
    for (const auto& r : DenyListRules(m)) {
      if (r.syscall == "socket") out.push_back(r);
    }
    return out;
  };
  auto none = socket_rules(NetworkMode::kNone);
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].args[0].op, ArgMatch::kNe);
  EXPECT_EQ(none[0].args[0].value, static_cast<uint64_t>(AF_UNIX));
  bool packet_denied = false;
  for (const auto& r : socket_rules(NetworkMode::kLoopback)) {
    packet_denied |= r.args[0].value == static_cast<uint64_t>(AF_PACKET);
  }
  EXPECT_TRUE(packet_denied);
}

TEST(SeccompRulesTest, AllowListKeepsTheArgumentChecks) {
  const auto rules = AllowListRules(NetworkMode::kNone);
  const auto names = Names(rules);
  for (const char* needed : {"execve", "read", "write", "openat", "clone", "mmap", "wait4"}) {
    EXPECT_TRUE(names.count(needed)) << needed;
  }
  for (const char* absent : {"ptrace", "mount", "bpf", "io_uring_setup", "unshare"}) {
    EXPECT_FALSE(names.count(absent)) << absent;
  }
  int clone_checks = 0;
  for (const auto& r : rules) clone_checks += r.syscall == "clone" && !r.args.empty();
  EXPECT_GE(clone_checks, 7);
}

TEST(SeccompRulesTest, BothProfilesCompile) {
  for (SeccompMode mode : {SeccompMode::kDenyList, SeccompMode::kAllowList}) {
    for (NetworkMode net : {NetworkMode::kNone, NetworkMode::kLoopback, NetworkMode::kHost}) {
      auto prog = BuildSeccompProgram(mode, net);
      ASSERT_TRUE(prog.ok()) << prog.status().ToString();
      EXPECT_GT(prog->bpf.size(), 8u * 20);
      EXPECT_EQ(prog->bpf.size() % 8, 0u);
    }
  }
  auto off = BuildSeccompProgram(SeccompMode::kOff, NetworkMode::kNone);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->bpf.empty());
}

}  // namespace
}  // namespace v4agent::sandbox
