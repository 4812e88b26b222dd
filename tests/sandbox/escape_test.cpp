// Escape and abuse attempts from peers spec §9 A-E, each a real program run in the real
// sandbox (as root and as uid 65534): every one must be denied or contained and the host
// left unchanged. Each row prints what happened; the row says what must be seen.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>

#include "common/strings.h"
#include "tests/sandbox/sandbox_harness.h"

namespace v4agent::sandbox {
namespace {

using testing::Outcome;

struct Attack {
  const char* id;      // §9 number and a word
  const char* script;  // run by /bin/sh -c in the workspace
  const char* expect;  // must appear in stdout+stderr
  int code;            // expected exit code; -1: any
};

// A python helper: syscall(nr, args...) -> prints "nr=<ret> errno=<name>".
constexpr char kSyscallPy[] =
    "python3 -c \"import ctypes,sys,errno; l=ctypes.CDLL(None, use_errno=True); "
    "a=[int(x,0) for x in sys.argv[1:]]; r=l.syscall(*a); "
    "print('r=%d %s' % (r, errno.errorcode.get(ctypes.get_errno(),'0')))\" ";

const Attack kAttacks[] = {
    // A. Filesystem.
    {"A1_absolute", "echo x > /etc/v4-escape 2>&1; echo x > /usr/v4-escape 2>&1", "Read-only", -1},
    {"A1_dotdot",
     "cd ../../../..; echo x > v4-escape 2>&1; echo x > /proc/self/cwd/../v4-escape 2>&1",
     "Read-only", -1},
    {"A1_proc_root", "echo x > /proc/1/root/etc/v4-escape 2>&1 || echo denied", "denied", -1},
    {"A2_allowed", "echo ok > inside.txt && echo ok > /dev/null && cat inside.txt", "ok", 0},
    {"A3_symlink_out", "ln -s / out && (echo x > out/etc/v4-escape) 2>&1", "Read-only", -1},
    {"A3_protected_swap",
     "mkdir -p .git/hooks; rm -rf .git/hooks 2>&1; mv .git/hooks .git/h2 2>&1; "
     "ln -sfn /tmp .git/hooks 2>&1; echo x > .git/hooks/post-checkout 2>&1; ls -ld .git/hooks",
     "drwx", -1},
    {"A4_hardlink", "ln /etc/passwd hard 2>&1 || echo refused", "refused", -1},
    {"A4_mknod", "mknod dev c 1 3 2>&1 || echo refused; mkfifo fifo && echo fifo-ok",
     "refused\nfifo-ok", -1},
    {"A5_git_hooks", "echo evil > .git/hooks/pre-commit 2>&1 || echo refused", "refused", -1},
    {"A5_git_config", "echo '[core]' >> .git/config 2>&1 || echo refused", "refused", -1},
    {"A5_shell_rc", "echo evil >> .bashrc 2>&1 || echo refused", "refused", -1},
    {"A7_fsize", "ulimit -f 100; head -c 1000000 /dev/zero > big; echo code=$?", "code=153", -1},
    {"A7_tmp_full", "{ head -c 300000000 /dev/zero > /tmp/fill; } 2>&1; echo code=$?",
     "No space left", -1},
    {"A8_setuid", "cp /bin/sh ./suid && chmod u+s ./suid; ./suid -c 'id -u'; id -u", "1000\n1000",
     0},
    // B. Processes and resources.
    {"B9_fork_bomb",
     "ulimit -u 64; i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); done 2>&1 | tail -1; "
     "echo contained",
     "contained", -1},
    {"B10_memory_bomb",
     "python3 -c \"b=bytearray()\nwhile True: b.extend(bytes(50000000))\" 2>&1 | tail -1",
     "MemoryError", -1},
    {"B15_fds",
     "python3 -c \"import os\nfs=[]\ntry:\n  [fs.append(os.open('/dev/null', 0)) for _ in "
     "range(100000)]\nexcept OSError as e: print('EMFILE' if e.errno==24 else e)\"",
     "EMFILE", 0},
    // C. Kernel and syscall surface.
    {"C16_ptrace",
     "sleep 5 & p=$!; python3 -c \"import ctypes; l=ctypes.CDLL(None, "
     "use_errno=True); print('r=%d e=%d' % (l.ptrace(16, $p, 0, 0), "
     "ctypes.get_errno()))\"; kill $p",
     "r=-1 e=1", -1},
    {"C16_process_vm",
     "python3 -c \"import os,ctypes; l=ctypes.CDLL(None, use_errno=True); "
     "print(l.syscall(310, os.getppid(), 0, 0, 0, 0, 0), ctypes.get_errno())\"",
     "-1 1", 0},
    {"C17_io_uring", "P 425 8 0", "r=-1 EPERM", 0},
    {"C18_unshare", "unshare -Ur true 2>&1 || echo refused", "refused", -1},
    {"C18_clone_newuser", "P 56 0x10000000 0 0 0 0", "r=-1 EPERM", 0},
    {"C18_clone3", "P 435 0 0", "r=-1 ENOSYS", 0},
    {"C18_setns", "P 308 0 0", "r=-1 EPERM", 0},
    {"C18_mount", "mount -t tmpfs none /mnt 2>&1 || echo refused", "refused", -1},
    {"C18_chroot", "P 161 0x0", "r=-1 EPERM", 0},
    {"C18_pivot_root", "P 155 0 0", "r=-1 EPERM", 0},
    {"C19_bpf", "P 321 0 0 0", "r=-1 EPERM", 0},
    {"C19_perf", "P 298 0 0 0 0 0", "r=-1 EPERM", 0},
    {"C19_userfaultfd", "P 323 0", "r=-1 EPERM", 0},
    {"C19_keyctl", "P 250 0 0 0", "r=-1 EPERM", 0},
    {"C19_add_key", "P 248 0 0 0 0 0", "r=-1 EPERM", 0},
    {"C19_kexec", "P 246 0 0 0 0", "r=-1 EPERM", 0},
    {"C19_init_module", "P 175 0 0 0", "r=-1 EPERM", 0},
    {"C19_open_by_handle", "P 304 0 0 0", "r=-1 EPERM", 0},
    {"C19_personality", "P 135 0x0400000", "r=-1 EPERM", 0},
    {"C19_acct", "P 163 0", "r=-1 EPERM", 0},
    {"C19_swapon", "P 167 0 0", "r=-1 EPERM", 0},
    {"C19_reboot", "P 169 0xfee1dead 672274793 0x1234567 0", "r=-1 EPERM", 0},
    {"C20_x32", "P 0x40000027; echo code=$?", "code=159", -1},
    {"C20_int80",
     "printf 'int main(void){long r; __asm__ volatile(\"int $0x80\":\"=a\"(r):\"a\"(20L)); "
     "return 0;}' > i.c && cc -o i i.c && ./i; echo code=$?",
     "code=159", -1},
    {"C21_tiocsti",
     "python3 -c \"import fcntl,termios\ntry: fcntl.ioctl(0, termios.TIOCSTI, b'x')\n"
     "except OSError as e: print(e.errno)\"",
     "1", 0},
    {"C22_nnp_caps", "grep -E 'NoNewPrivs|CapEff|Seccomp:' /proc/self/status", "NoNewPrivs:\t1", 0},
    // D. Network and IPC.
    {"D23_inet", "P 41 2 1 0", "r=-1 EACCES", 0},
    {"D23_inet6", "P 41 10 2 0", "r=-1 EACCES", 0},
    {"D23_dev_tcp", "bash -c 'echo > /dev/tcp/127.0.0.1/22' 2>&1 || echo refused", "refused", -1},
    {"D25_netlink", "P 41 16 3 0", "r=-1 EACCES", 0},
    {"D25_packet", "P 41 17 3 0", "r=-1 EACCES", 0},
    {"D25_vsock", "P 41 40 1 0", "r=-1 EACCES", 0},
    {"D25_unix_ok", "P 41 1 1 0", "r=3", 0},
    {"D25_docker_sock", "ls /run 2>&1; ls /var/run/docker.sock 2>&1 || echo gone", "gone", -1},
    {"D26_uts_kill", "hostname; kill -9 -1 2>/dev/null; echo alive", "sandbox\n", -1},
    // E. Information leaks.
    {"E27_proc_pids", "ls /proc | grep -c '^[0-9]'", "", 0},
    {"E28_env", "env", "", 0},
    {"E29_fds", "ls /proc/self/fd", "", 0},
};

class EscapeTest : public ::testing::TestWithParam<std::tuple<bool, Attack>> {};

TEST_P(EscapeTest, IsDeniedOrContained) {
  const auto& [unprivileged, attack] = GetParam();
  if (unprivileged && !testing::CanDropToNobody()) GTEST_SKIP() << "needs root to drop from";
  testing::Workspace ws;
  // Things an attacker finds in a workspace: a git repo with hooks and config, an rc file.
  ASSERT_EQ(std::system(StrCat("cd ", ws.path(),
                               " && git init -q . && touch .bashrc && "
                               "chmod -R a+rwX .")
                            .c_str()),
            0);
  Profile p = DefaultProfile(ws.path());
  p.tmp_size_bytes = 64ull << 20;
  p.rlimits.address_space = 1ull << 30;
  p.timeout_seconds = 60;
  // `P nr args...` runs one raw syscall through the python helper.
  const std::string script = StrCat("P() { ", kSyscallPy, "\"$@\"; }; ", attack.script);
  Outcome o = testing::RunIn(p, {"/bin/sh", "-c", script}, unprivileged);
  const std::string all = o.out + o.err;
  if (attack.code >= 0)
    EXPECT_EQ(o.code, attack.code) << all << DumpJson(o.report["setup_failure"]);
  EXPECT_NE(all.find(attack.expect), std::string::npos) << attack.id << ":\n" << all;
  const std::string id = attack.id;
  // Rows whose output is checked here rather than by a fixed string.
  if (id == "C22_nnp_caps") {
    EXPECT_NE(all.find("CapEff:\t0000000000000000"), std::string::npos) << all;
    EXPECT_NE(all.find("Seccomp:\t2"), std::string::npos) << all;
  }
  if (id == "E27_proc_pids") EXPECT_LE(std::atoi(o.out.c_str()), 4) << all;
  if (id == "E28_env") {
    EXPECT_EQ(all.find("V4_TEST_SECRET"), std::string::npos) << all;
    EXPECT_NE(all.find("PATH="), std::string::npos);
  }
  if (id == "E29_fds") EXPECT_EQ(StripWhitespace(o.out), "0\n1\n2\n3") << all;
  // The host is unchanged.
  EXPECT_FALSE(PathExists("/etc/v4-escape"));
  EXPECT_FALSE(PathExists("/usr/v4-escape"));
}

std::vector<std::tuple<bool, Attack>> Rows() {
  // Leaked into our environment on purpose: the sandbox must not pass it on (E28).
  setenv("V4_TEST_SECRET", "sk-do-not-leak", 1);
  // An inherited descriptor without O_CLOEXEC: must not reach the command (E29).
  static int leaked = open("/dev/null", O_RDONLY);
  (void)leaked;
  std::vector<std::tuple<bool, Attack>> rows;
  for (bool unprivileged : {false, true}) {
    for (const Attack& a : kAttacks) rows.emplace_back(unprivileged, a);
  }
  return rows;
}

INSTANTIATE_TEST_SUITE_P(Section9, EscapeTest, ::testing::ValuesIn(Rows()), [](const auto& info) {
  return std::string(std::get<1>(info.param).id) +
         (std::get<0>(info.param) ? "_unprivileged" : "_self");
});

TEST(EscapeTest, AbstractUnixSocketsOfTheHostAreUnreachable) {
  // D25: a host process listening on an abstract socket; the sandbox has its own netns.
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const char name[] = "\0v4agent-test-abstract";
  std::memcpy(addr.sun_path, name, sizeof(name) - 1);
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + sizeof(name) - 1);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(listen(s, 1), 0);
  testing::Workspace ws;
  Outcome o = testing::RunIn(
      DefaultProfile(ws.path()),
      {"python3", "-c",
       "import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect('\\0v4agent-test-"
       "abstract'); print('connected')\nexcept OSError as e: print('refused', e.errno)"},
      false);
  close(s);
  EXPECT_NE(o.out.find("refused"), std::string::npos) << o.out << o.err;
}

}  // namespace
}  // namespace v4agent::sandbox
