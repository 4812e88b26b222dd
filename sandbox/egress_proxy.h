// EgressProxy: the host side of NetworkMode::kProxy. An HTTP/HTTPS proxy on a unix socket
// (bound into the sandbox, where the init relays 127.0.0.1:kProxyPort to it) that admits only
// hosts on an allowlist: CONNECT tunnels (HTTPS and anything else over TLS) and absolute-form
// plain-HTTP requests, one request per connection. Every decision goes to a callback (the
// trajectory). The sandbox keeps its own network namespace with no route out, so the proxy is
// the only way out.
//
// Host names are normalised before matching (lower case, trailing dots dropped, IPv4 in any
// numeric form that inet_aton accepts written as a dotted quad, IPv6 without brackets); an IP
// literal is admitted only by a pattern that names that address. Resolved addresses that are
// link-local (cloud metadata), unspecified or multicast are refused whatever the name.
#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace v4agent::sandbox {

struct EgressDecision {
  std::string host;  // as normalised
  int port = 0;
  bool allowed = false;
  std::string method;  // CONNECT, GET, ...
  std::string reason;  // the pattern that admitted it, or why it was refused
};

// Allowlist patterns: "pypi.org" (that host, any port), "*.pythonhosted.org" (any subdomain,
// not the domain itself), "registry.npmjs.org:443" (that port only), "10.1.2.3" (an address).
class EgressAllowlist {
 public:
  // Errors name the pattern that is malformed.
  static Result<EgressAllowlist> Parse(const std::vector<std::string>& patterns);
  // The pattern that admits host:port (host as given; it is normalised here), or "".
  std::string Match(const std::string& host, int port) const;
  const std::vector<std::string>& patterns() const { return source_; }

 private:
  struct Entry {
    std::string host;  // normalised; leading "*." kept for suffix patterns
    int port = 0;      // 0: any
    std::string source;
  };
  std::vector<Entry> entries_;
  std::vector<std::string> source_;
};

// Lower case, no trailing dots, IPv4 as a dotted quad, IPv6 without brackets; "" when the
// name is not a host name (userinfo, percent signs, spaces, empty labels).
std::string NormalizeHost(const std::string& host);

class EgressProxy {
 public:
  using Observer = std::function<void(const EgressDecision&)>;
  // Listens on a fresh unix socket in a private directory; socket_path() says where.
  static Result<std::unique_ptr<EgressProxy>> Start(EgressAllowlist allowlist, Observer observer);
  ~EgressProxy();  // closes every connection and joins every thread
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  const std::string& socket_path() const { return socket_path_; }

 private:
  EgressProxy() = default;
  void AcceptLoop();
  void Serve(int client);
  void Record(const EgressDecision& d);

  EgressAllowlist allowlist_;
  Observer observer_;
  std::string dir_, socket_path_;
  UniqueFd listener_;
  UniqueFd wake_read_, wake_write_;  // stops the accept loop
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::list<std::thread> threads_;
  std::vector<int> open_fds_;  // shut down on stop so that blocked threads return
  std::thread acceptor_;
};

}  // namespace v4agent::sandbox
