// The egress allowlist (NetworkMode::kProxy, peers spec §9 D24): real HTTP servers on the
// host's loopback, our proxy on a unix socket, the sandbox's relay at 127.0.0.1:3128 inside.
// An allowed host is reached through the proxy by an ordinary client that only follows the
// environment; another host, IP literals and numeric tricks are refused; a direct connection
// that bypasses the proxy goes nowhere; every decision reaches the observer.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "common/check.h"
#include "common/strings.h"
#include "sandbox/egress_proxy.h"
#include "tests/sandbox/host_server.h"
#include "tests/sandbox/sandbox_harness.h"

namespace v4agent::sandbox {
namespace {

using testing::HostServer;
using testing::Outcome;

TEST(EgressNormalizeTest, Hosts) {
  EXPECT_EQ(NormalizeHost("PyPI.Org."), "pypi.org");
  EXPECT_EQ(NormalizeHost("pypi.org.."), "pypi.org");
  EXPECT_EQ(NormalizeHost("2130706433"), "127.0.0.1");
  EXPECT_EQ(NormalizeHost("0x7f.1"), "127.0.0.1");
  EXPECT_EQ(NormalizeHost("127.1"), "127.0.0.1");
  EXPECT_EQ(NormalizeHost("[::FFFF:127.0.0.1]"), "::ffff:127.0.0.1");
  EXPECT_EQ(NormalizeHost("user@evil.com"), "");
  EXPECT_EQ(NormalizeHost("evil%2ecom"), "");
  EXPECT_EQ(NormalizeHost("a..b"), "");
  EXPECT_EQ(NormalizeHost(""), "");
}

TEST(EgressAllowlistTest, Matching) {
  auto list = EgressAllowlist::Parse(
      {"pypi.org", "*.pythonhosted.org", "registry.npmjs.org:443", "10.1.2.3", "[::1]:8080"});
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(list->Match("PYPI.org.", 443), "pypi.org");
  EXPECT_EQ(list->Match("pypi.org", 8443), "pypi.org");  // any port without :port
  EXPECT_EQ(list->Match("files.pythonhosted.org", 443), "*.pythonhosted.org");
  EXPECT_EQ(list->Match("pythonhosted.org", 443), "");  // the domain itself is not a subdomain
  EXPECT_EQ(list->Match("evilpythonhosted.org", 443), "");
  EXPECT_EQ(list->Match("registry.npmjs.org", 443), "registry.npmjs.org:443");
  EXPECT_EQ(list->Match("registry.npmjs.org", 80), "");
  EXPECT_EQ(list->Match("10.1.2.3", 22), "10.1.2.3");
  EXPECT_EQ(list->Match("167838211", 22), "10.1.2.3");  // the same address, numerically
  EXPECT_EQ(list->Match("::1", 8080), "[::1]:8080");
  EXPECT_EQ(list->Match("pypi.org.evil.com", 443), "");
  for (const char* bad : {"", "*.", "*.10.0.0.1", "a b", "host:99999", "user@host"}) {
    EXPECT_FALSE(EgressAllowlist::Parse({bad}).ok()) << bad;
  }
}

// A raw proxy request from inside the sandbox: prints the first line of the answer.
std::string RawProxy(const std::string& request) {
  return StrCat(
      "python3 -c \"import socket\ns=socket.create_connection(('127.0.0.1', 3128))\n"
      "s.sendall(b'",
      request, "')\nprint(s.recv(4096).split(b'\\\\r\\\\n')[0].decode())\"");
}

class EgressTest : public ::testing::TestWithParam<bool> {};

TEST_P(EgressTest, AllowlistThroughTheProxyAndNothingElse) {
  if (GetParam() && !testing::CanDropToNobody()) GTEST_SKIP() << "needs root to drop from";
  HostServer a("A"), b("B");
  std::mutex mu;
  std::vector<EgressDecision> decisions;
  auto allow = EgressAllowlist::Parse({StrCat("localhost:", a.port())});
  ASSERT_TRUE(allow.ok());
  auto proxy = EgressProxy::Start(*allow, [&](const EgressDecision& d) {
    std::lock_guard<std::mutex> lock(mu);
    decisions.push_back(d);
  });
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  const std::string sock = (*proxy)->socket_path();
  // The unprivileged run connects as another user than the one that started the proxy.
  chmod(sock.substr(0, sock.rfind('/')).c_str(), 0711);
  chmod(sock.c_str(), 0777);
  testing::Workspace ws;
  Profile p = DefaultProfile(ws.path());
  p.network = NetworkMode::kProxy;
  p.proxy_socket = sock;
  const std::string script = StrCat(
      // An ordinary client that follows the environment, with a mixed-case, trailing-dot name.
      "python3 -c \"import urllib.request\nprint(urllib.request.urlopen('http://LocalHost.:",
      a.port(), "/x').read().decode())\"; ",
      // A tunnel to the allowed host.
      "python3 -c \"import socket\ns=socket.create_connection(('127.0.0.1', 3128))\n"
      "s.sendall(b'CONNECT localhost:",
      a.port(),
      " HTTP/1.1\\\\r\\\\n\\\\r\\\\n')\nprint(s.recv(4096).split(b'\\\\r\\\\n')[0].decode())\n"
      "s.sendall(b'GET / HTTP/1.1\\\\r\\\\nHost: x\\\\r\\\\n\\\\r\\\\n')\nimport time\n"
      "time.sleep(0.3)\nprint(s.recv(4096).split(b'\\\\r\\\\n\\\\r\\\\n')[1].decode())\"; ",
      // Another host (port), an IP literal, a numeric spelling of the same address.
      RawProxy(StrCat("CONNECT localhost:", b.port(), " HTTP/1.1\\\\r\\\\n\\\\r\\\\n")), "; ",
      RawProxy(StrCat("GET http://127.0.0.1:", a.port(), "/ HTTP/1.1\\\\r\\\\n\\\\r\\\\n")), "; ",
      RawProxy(StrCat("GET http://2130706433:", a.port(), "/ HTTP/1.1\\\\r\\\\n\\\\r\\\\n")), "; ",
      // Around the proxy: the sandbox's loopback is its own, and there is no route out.
      "python3 -c \"import socket\nfor t in [('127.0.0.1', ", a.port(),
      "), ('10.255.255.1', 80)]:\n  try:\n    socket.create_connection(t, 2); print('direct')\n"
      "  except OSError as e: print('direct refused', e.errno)\"");
  Outcome o = testing::RunIn(p, {"/bin/sh", "-c", script}, GetParam());
  EXPECT_EQ(o.out,
            "hello-A\n"
            "HTTP/1.1 200 Connection established\n"
            "hello-A\n"
            "HTTP/1.1 403 Forbidden\n"
            "HTTP/1.1 403 Forbidden\n"
            "HTTP/1.1 403 Forbidden\n"
            "direct refused 111\n"
            "direct refused 101\n")
      << o.err << DumpJson(o.report);
  EXPECT_EQ(a.hits(), 2);
  EXPECT_EQ(b.hits(), 0);
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::string> seen;
  for (const auto& d : decisions) {
    seen.push_back(StrCat(d.method, " ", d.host, " ", d.allowed ? "allowed" : "refused"));
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"CONNECT localhost allowed",
                                            "CONNECT localhost refused", "GET 127.0.0.1 refused",
                                            "GET 127.0.0.1 refused", "GET localhost allowed"}));
}

INSTANTIATE_TEST_SUITE_P(Users, EgressTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Unprivileged" : "Self"; });

}  // namespace
}  // namespace v4agent::sandbox
