// A tiny HTTP server on the host's loopback for tests of network access from the sandbox:
// answers every request with "hello-<name>" and counts the requests it got.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "common/check.h"
#include "common/strings.h"

namespace v4agent::sandbox::testing {

class HostServer {
 public:
  explicit HostServer(std::string name) : name_(std::move(name)) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    V4_CHECK(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    V4_CHECK(listen(fd_, 16) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Loop(); });
  }
  ~HostServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  int hits() const { return hits_; }

 private:
  void Loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = read(c, buf, sizeof(buf));
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      ++hits_;
      const std::string body = "hello-" + name_;
      const std::string reply = StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                                       "\r\nConnection: close\r\n\r\n", body);
      (void)!write(c, reply.data(), reply.size());
      close(c);
    }
  }
  std::string name_;
  int fd_ = -1, port_ = 0;
  std::atomic<int> hits_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace v4agent::sandbox::testing
