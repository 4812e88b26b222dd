#include "sandbox/egress_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include "common/file_util.h"
#include "common/strings.h"

namespace v4agent::sandbox {
namespace {

constexpr size_t kMaxHead = 64 * 1024;
constexpr int kHeadTimeoutMs = 30'000;
constexpr int kConnectTimeoutMs = 10'000;

bool IsIpLiteral(const std::string& h) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET6, h.c_str(), &a6) == 1 || inet_pton(AF_INET, h.c_str(), &a4) == 1;
}

// Addresses no allowed name may lead to: cloud metadata and other link-local services, the
// unspecified address, multicast.
bool ForbiddenAddress(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    const uint32_t a = ntohl(reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr);
    return (a >> 16) == 0xA9FE || (a >> 24) == 0 || (a >> 28) == 0xE;
  }
  if (sa->sa_family == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
      sockaddr_in v4{};
      v4.sin_family = AF_INET;
      std::memcpy(&v4.sin_addr, a.s6_addr + 12, 4);
      return ForbiddenAddress(reinterpret_cast<const sockaddr*>(&v4));
    }
    return IN6_IS_ADDR_LINKLOCAL(&a) || IN6_IS_ADDR_UNSPECIFIED(&a) || IN6_IS_ADDR_MULTICAST(&a);
  }
  return true;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void Refuse(int fd, int status, const std::string& why) {
  const std::string body = StrCat("v4agent egress proxy: ", why, "\n");
  const std::string reply =
      StrCat("HTTP/1.1 ", status, status == 403 ? " Forbidden" : " Bad Request",
             "\r\nContent-Type: text/plain\r\nContent-Length: ", body.size(),
             "\r\nConnection: close\r\n\r\n", body);
  WriteAll(fd, reply.data(), reply.size());
}

// Connects with a timeout to the first usable address of host:port.
int ConnectTo(const std::string& host, int port, std::string* error) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) {
    *error = StrCat("cannot resolve ", host, ": ", gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  *error = StrCat("no address of ", host, " accepted a connection");
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    if (ForbiddenAddress(ai->ai_addr)) {
      *error = StrCat(host, " resolves to a link-local, unspecified or multicast address");
      continue;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    if (poll(&p, 1, kConnectTimeoutMs) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close(fd);
      fd = -1;
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    break;
  }
  freeaddrinfo(res);
  return fd;
}

// Copies both ways until both sides are done.
void Relay(int a, int b) {
  bool a_open = true, b_open = true;
  char buf[65536];
  while (a_open || b_open) {
    pollfd fds[2] = {{a, static_cast<short>(a_open ? POLLIN : 0), 0},
                     {b, static_cast<short>(b_open ? POLLIN : 0), 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const int from = i == 0 ? a : b;
      const int to = i == 0 ? b : a;
      const ssize_t r = read(from, buf, sizeof(buf));
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        (i == 0 ? a_open : b_open) = false;
        shutdown(to, SHUT_WR);
        if (r < 0) return;
        continue;
      }
      if (!WriteAll(to, buf, static_cast<size_t>(r))) return;
    }
  }
}

// "host:port" / "[v6]:port" -> host, port; false when malformed.
bool SplitHostPort(const std::string& s, std::string* host, int* port, int default_port) {
  std::string h = s;
  std::string p;
  if (!h.empty() && h[0] == '[') {
    const size_t close = h.find(']');
    if (close == std::string::npos) return false;
    if (close + 1 < h.size()) {
      if (h[close + 1] != ':') return false;
      p = h.substr(close + 2);
    }
    h = h.substr(1, close - 1);
  } else if (const size_t colon = h.rfind(':'); colon != std::string::npos) {
    if (h.find(':') != colon) return false;  // a bare IPv6 address needs brackets
    p = h.substr(colon + 1);
    h = h.substr(0, colon);
  }
  *port = default_port;
  if (!p.empty()) {
    int64_t v = 0;
    if (!ParseInt64(p, &v) || v <= 0 || v > 65535) return false;
    *port = static_cast<int>(v);
  }
  *host = h;
  return !h.empty();
}

}  // namespace

std::string NormalizeHost(const std::string& raw) {
  std::string h = raw;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  while (!h.empty() && h.back() == '.') h.pop_back();
  if (h.empty()) return "";
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  in6_addr a6;
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
    return buf;
  }
  for (char c : h) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) {
      return "";
    }
  }
  if (h.find("..") != std::string::npos || h.front() == '.') return "";
  // 127.1, 0x7f.0.0.1, 2130706433: what a resolver would take as an address is one.
  in_addr a4;
  if (inet_aton(h.c_str(), &a4) != 0) {
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a4, buf, sizeof(buf));
    return buf;
  }
  return h;
}

Result<EgressAllowlist> EgressAllowlist::Parse(const std::vector<std::string>& patterns) {
  EgressAllowlist list;
  for (const std::string& p : patterns) {
    Entry e;
    e.source = p;
    std::string host = p;
    int port = 0;
    const bool wildcard = StartsWith(host, "*.");
    if (wildcard) host = host.substr(2);
    const bool bare_v6 = host.find(':') != host.rfind(':') && host.front() != '[';
    if (!bare_v6 && !SplitHostPort(host, &host, &port, 0)) host.clear();
    const std::string norm = host.empty() ? "" : NormalizeHost(host);
    if (norm.empty() || (wildcard && IsIpLiteral(norm))) {
      return InvalidArgumentError(
          StrCat("network allowlist: \"", p,
                 "\" is not a host name, *.domain, an address, or one of those with :port"));
    }
    e.host = (wildcard ? "*." : "") + norm;
    e.port = port;
    list.entries_.push_back(std::move(e));
    list.source_.push_back(p);
  }
  return list;
}

std::string EgressAllowlist::Match(const std::string& raw_host, int port) const {
  const std::string host = NormalizeHost(raw_host);
  if (host.empty()) return "";
  for (const Entry& e : entries_) {
    if (e.port != 0 && e.port != port) continue;
    if (StartsWith(e.host, "*.")) {
      const std::string suffix = e.host.substr(1);  // ".domain"
      if (!IsIpLiteral(host) && EndsWith(host, suffix) && host.size() > suffix.size()) {
        return e.source;
      }
    } else if (host == e.host) {
      return e.source;
    }
  }
  return "";
}

Result<std::unique_ptr<EgressProxy>> EgressProxy::Start(EgressAllowlist allowlist,
                                                        Observer observer) {
  auto proxy = std::unique_ptr<EgressProxy>(new EgressProxy());
  proxy->allowlist_ = std::move(allowlist);
  proxy->observer_ = std::move(observer);
  V4_ASSIGN_OR_RETURN(proxy->dir_, MakeTempDir("v4agent-egress"));
  proxy->socket_path_ = proxy->dir_ + "/proxy.sock";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (proxy->socket_path_.size() >= sizeof(addr.sun_path)) {
    return InvalidArgumentError(
        StrCat("egress proxy: socket path too long: ", proxy->socket_path_));
  }
  std::memcpy(addr.sun_path, proxy->socket_path_.c_str(), proxy->socket_path_.size() + 1);
  proxy->listener_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!proxy->listener_ ||
      bind(proxy->listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(proxy->listener_.get(), 64) != 0) {
    return ErrnoError(StrCat("egress proxy: listen on ", proxy->socket_path_), errno);
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC) != 0) return ErrnoError("egress proxy: pipe", errno);
  proxy->wake_read_ = UniqueFd(wake[0]);
  proxy->wake_write_ = UniqueFd(wake[1]);
  proxy->acceptor_ = std::thread([p = proxy.get()] { p->AcceptLoop(); });
  return proxy;
}

EgressProxy::~EgressProxy() {
  stopping_ = true;
  if (wake_write_) {
    char c = 1;
    (void)!write(wake_write_.get(), &c, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
  listener_.Reset();
  if (!dir_.empty()) (void)RemoveAll(dir_);
}

void EgressProxy::Record(const EgressDecision& d) {
  if (observer_) observer_(d);
}

void EgressProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    const int client = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(client);
    threads_.emplace_back([this, client] { Serve(client); });
  }
}

void EgressProxy::Serve(int client) {
  int upstream = -1;
  auto forget = [&](int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
    close(fd);
  };
  // The request head.
  std::string head;
  char buf[8192];
  size_t end = std::string::npos;
  while (end == std::string::npos && head.size() < kMaxHead) {
    pollfd p{client, POLLIN, 0};
    if (poll(&p, 1, kHeadTimeoutMs) != 1) break;
    const ssize_t r = read(client, buf, sizeof(buf));
    if (r <= 0) break;
    head.append(buf, static_cast<size_t>(r));
    end = head.find("\r\n\r\n");
  }
  EgressDecision d;
  auto done = [&] {
    if (upstream >= 0) {
      std::lock_guard<std::mutex> lock(mu_);
      open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), upstream), open_fds_.end());
      close(upstream);
    }
    forget(client);
  };
  if (end == std::string::npos) {
    Refuse(client, 400, "no complete request head");
    return done();
  }
  const std::string rest = head.substr(end + 4);
  head.resize(end + 2);
  const size_t line_end = head.find("\r\n");
  const auto parts = StrSplit(head.substr(0, line_end), ' ');
  if (parts.size() != 3 || !StartsWith(parts[2], "HTTP/1.")) {
    Refuse(client, 400, "not an HTTP/1.x request");
    return done();
  }
  d.method = parts[0];
  std::string target = parts[1], raw_host, path;
  int port = 0;
  if (d.method == "CONNECT") {
    if (!SplitHostPort(target, &raw_host, &port, 0) || port == 0) {
      Refuse(client, 400, "CONNECT needs host:port");
      return done();
    }
  } else {
    if (!StartsWith(target, "http://")) {
      Refuse(client, 400, "a proxy request needs an absolute http:// URL (use CONNECT for https)");
      return done();
    }
    const std::string after = target.substr(7);
    const size_t slash = after.find('/');
    const std::string authority = after.substr(0, slash);
    path = slash == std::string::npos ? "/" : after.substr(slash);
    if (authority.find('@') != std::string::npos ||
        !SplitHostPort(authority, &raw_host, &port, 80)) {
      Refuse(client, 400, StrCat("malformed host in ", target));
      return done();
    }
  }
  d.host = NormalizeHost(raw_host);
  d.port = port;
  if (d.host.empty()) {
    d.reason = StrCat("\"", raw_host, "\" is not a host name");
    Record(d);
    Refuse(client, 400, d.reason);
    return done();
  }
  const std::string pattern = allowlist_.Match(raw_host, port);
  if (pattern.empty()) {
    d.reason = "not in the policy's network allowlist";
    Record(d);
    Refuse(client, 403, StrCat(d.host, ":", port, " is ", d.reason));
    return done();
  }
  std::string error;
  upstream = ConnectTo(d.host, port, &error);
  if (upstream < 0) {
    d.reason = error;
    Record(d);
    Refuse(client, 403, error);
    return done();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    open_fds_.push_back(upstream);
  }
  d.allowed = true;
  d.reason = StrCat("allowed by \"", pattern, "\"");
  Record(d);
  if (d.method == "CONNECT") {
    const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    if (!WriteAll(client, ok, sizeof(ok) - 1)) return done();
  } else {
    // Origin form, our own Connection header, no proxy credentials passed on.
    std::string out = StrCat(d.method, " ", path, " ", parts[2], "\r\n");
    for (const auto& line : StrSplit(head.substr(line_end + 2), '\n')) {
      std::string l = line;
      if (!l.empty() && l.back() == '\r') l.pop_back();
      if (l.empty()) continue;
      std::string lower = l.substr(0, l.find(':'));
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (StartsWith(lower, "proxy-") || lower == "connection" || lower == "keep-alive") continue;
      out += l + "\r\n";
    }
    out += "Connection: close\r\n\r\n";
    if (!WriteAll(upstream, out.data(), out.size())) return done();
  }
  if (!rest.empty() && !WriteAll(upstream, rest.data(), rest.size())) return done();
  Relay(client, upstream);
  done();
}

}  // namespace v4agent::sandbox
