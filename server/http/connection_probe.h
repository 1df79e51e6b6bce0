// ConnectionProbe: tells whether the client of an HTTP request has closed
// its connection, while the handler is still working (waiting for a turn's
// tokens). cpp-httplib 0.11 gives handlers no socket (newer versions added
// Request::is_connection_closed, which does the same poll), so the probe
// finds the request's socket among the process's descriptors by its local
// and peer addresses (unique while the handler runs, since the connection
// stays open until it returns) and polls it for the peer's shutdown
// (POLLRDHUP). Without the socket (no /proc) it reports "open"; a failed
// write still ends a stream then. Thread-compatible.
#ifndef RWKV_SERVER_HTTP_CONNECTION_PROBE_H_
#define RWKV_SERVER_HTTP_CONNECTION_PROBE_H_

#include <string>

namespace rwkv::server {

class ConnectionProbe {
 public:
  // The connection of a request that came from `remote_addr:remote_port` to
  // `local_addr:local_port` (httplib::Request's fields).
  ConnectionProbe(const std::string& local_addr, int local_port,
                  const std::string& remote_addr, int remote_port);

  // True once the peer has closed (or reset) the connection.
  bool PeerClosed() const;
  // Whether the socket was found.
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_CONNECTION_PROBE_H_
