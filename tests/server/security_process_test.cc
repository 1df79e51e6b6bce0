// The security behaviour that lives in the rwkv-server process, on real
// child processes: TLS and mutual TLS handshakes with certificates made by
// `openssl` at test time (a CA, a server certificate for 127.0.0.1 and
// localhost, a client certificate, and an unrelated second CA), API keys
// reloaded on SIGHUP, and the shutdown race: calls sent around SIGTERM, many
// rounds, each either succeeds or gets UNAVAILABLE (never CANCELLED).
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/chat_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/api_key_table.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace rwkv::server {
namespace {

using ::rwkv::client::ChatClient;
using ::rwkv::client::ConnectOptions;
using ::rwkv::testing::ServerProcess;
using ::rwkv::testing::TempDir;
using ::testing::HasSubstr;

std::vector<std::string> TinyServer() {
  return {"--random-model", "tiny", "--threads", "1", "--store", "memory"};
}

bool RunQuietly(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// CA "ca", server cert for 127.0.0.1/localhost, client cert, and an
// unrelated CA "other" with its own client cert, under `dir`.
bool MakeCertificates(const TempDir& dir) {
  const std::string d = dir.path();
  auto key = [&](const std::string& name) {
    return absl::StrCat(
        "openssl genpkey -algorithm EC -pkeyopt "
        "ec_paramgen_curve:prime256v1 -out ",
        d, "/", name, ".key");
  };
  auto ca = [&](const std::string& name) {
    return key(name) + " && " +
           absl::StrCat("openssl req -x509 -new -key ", d, "/", name,
                        ".key -out ", d, "/", name,
                        ".pem -days 2 -subj /CN=", name, "-ca");
  };
  auto leaf = [&](const std::string& name, const std::string& ca_name,
                  const std::string& ext) {
    std::ofstream(d + "/" + name + ".ext") << ext;
    return key(name) + " && " +
           absl::StrCat("openssl req -new -key ", d, "/", name, ".key -out ", d,
                        "/", name, ".csr -subj /CN=", name) +
           " && " +
           absl::StrCat("openssl x509 -req -in ", d, "/", name, ".csr -CA ", d,
                        "/", ca_name, ".pem -CAkey ", d, "/", ca_name,
                        ".key -CAcreateserial -out ", d, "/", name,
                        ".pem -days 2 -extfile ", d, "/", name, ".ext");
  };
  return RunQuietly(ca("ca")) && RunQuietly(ca("other")) &&
         RunQuietly(leaf("server", "ca",
                         "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                         "extendedKeyUsage=serverAuth\n")) &&
         RunQuietly(leaf("client", "ca", "extendedKeyUsage=clientAuth\n")) &&
         RunQuietly(leaf("intruder", "other", "extendedKeyUsage=clientAuth\n"));
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RunQuietly("openssl version")) {
      GTEST_SKIP() << "no openssl program to make test certificates "
                      "(setup.sh installs it)";
    }
    ASSERT_TRUE(MakeCertificates(dir_)) << "openssl failed in " << dir_.path();
  }
  std::string F(const std::string& name) const { return dir_.Sub(name); }

  // GetModelInfo over a client with these options.
  absl::Status Call(const std::string& address, const ConnectOptions& o) {
    absl::StatusOr<std::unique_ptr<ChatClient>> client =
        ChatClient::Connect(address, o);
    if (!client.ok()) return client.status();
    (*client)->set_unary_timeout(absl::Seconds(10));
    return (*client)->GetModelInfo().status();
  }

  TempDir dir_;
};

TEST_F(TlsTest, HandshakeWithTheRightCaWrongCaAndPlaintextRefused) {
  std::vector<std::string> args = TinyServer();
  args.insert(args.end(),
              {"--tls-cert", F("server.pem"), "--tls-key", F("server.key")});
  ServerProcess server(RWKV_SERVER_BIN, args, F("tls.log"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  EXPECT_THAT(server.Log(), HasSubstr("; TLS"));
  ConnectOptions good;
  good.tls_ca_file = F("ca.pem");
  EXPECT_TRUE(Call(server.address(), good).ok()) << server.Log();
  // The certificate names localhost too.
  const std::string port =
      server.address().substr(server.address().rfind(':') + 1);
  EXPECT_TRUE(Call("localhost:" + port, good).ok());
  ConnectOptions wrong_ca;
  wrong_ca.tls_ca_file = F("other.pem");
  EXPECT_EQ(Call(server.address(), wrong_ca).code(),
            absl::StatusCode::kUnavailable);
  ConnectOptions wrong_name = good;
  wrong_name.tls_server_name = "elsewhere.example";
  EXPECT_EQ(Call(server.address(), wrong_name).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call(server.address(), ConnectOptions()).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server.Stop(), 0);
}

TEST_F(TlsTest, MutualTlsNeedsAClientCertificateFromTheClientCa) {
  std::vector<std::string> args = TinyServer();
  args.insert(args.end(), {"--tls-cert", F("server.pem"), "--tls-key",
                           F("server.key"), "--tls-client-ca", F("ca.pem")});
  ServerProcess server(RWKV_SERVER_BIN, args, F("mtls.log"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  EXPECT_THAT(server.Log(), HasSubstr("; mutual TLS"));
  ConnectOptions with_cert;
  with_cert.tls_ca_file = F("ca.pem");
  with_cert.tls_cert_file = F("client.pem");
  with_cert.tls_key_file = F("client.key");
  EXPECT_TRUE(Call(server.address(), with_cert).ok()) << server.Log();
  ConnectOptions without_cert;
  without_cert.tls_ca_file = F("ca.pem");
  EXPECT_EQ(Call(server.address(), without_cert).code(),
            absl::StatusCode::kUnavailable);
  ConnectOptions foreign_cert = with_cert;
  foreign_cert.tls_cert_file = F("intruder.pem");
  foreign_cert.tls_key_file = F("intruder.key");
  EXPECT_EQ(Call(server.address(), foreign_cert).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server.Stop(), 0);
}

// The HTTP front serves HTTPS with the same files ("HTTP front on
// https://HOST:PORT/" in the log): the right CA works, another is refused,
// plaintext gets no answer; with --tls-client-ca a client certificate is
// required.
int HttpsPort(const std::string& log) {
  const std::string tag = "HTTP front on https://127.0.0.1:";
  const size_t at = log.find(tag);
  if (at == std::string::npos) return 0;
  return std::atoi(log.c_str() + at + tag.size());
}

TEST_F(TlsTest, HttpsWithTheSameCertificatesAndMutualTls) {
  if (!RunQuietly("curl --version")) {
    GTEST_SKIP() << "no curl (setup.sh installs it for the HTTP tests)";
  }
  for (const bool mutual : {false, true}) {
    std::vector<std::string> args = TinyServer();
    args.insert(args.end(),
                {"--tls-cert", F("server.pem"), "--tls-key", F("server.key")});
    if (mutual) args.insert(args.end(), {"--tls-client-ca", F("ca.pem")});
    ServerProcess server(RWKV_SERVER_BIN, args,
                         F(mutual ? "https-m.log" : "https.log"));
    ASSERT_TRUE(server.Start().ok()) << server.Log();
    const int port = HttpsPort(server.Log());
    ASSERT_GT(port, 0) << server.Log();
    // curl (setup.sh installs it for the HTTP tests): the HTTP status, or
    // 0 when the handshake or the connection failed.
    auto get = [&](const std::string& ca, const std::string& cert,
                   const std::string& key) {
      std::string cmd = absl::StrCat(
          "curl -s -m 10 -o /dev/null -w '%{http_code}' --cacert ", F(ca));
      if (!cert.empty()) {
        absl::StrAppend(&cmd, " --cert ", F(cert), " --key ", F(key));
      }
      absl::StrAppend(&cmd, " https://127.0.0.1:", port, "/healthz");
      FILE* p = popen(cmd.c_str(), "r");
      char buf[16] = {0};
      const size_t n = p != nullptr ? fread(buf, 1, sizeof(buf) - 1, p) : 0;
      if (p != nullptr) pclose(p);
      return n > 0 ? std::atoi(buf) : -1;
    };
    if (!mutual) {
      EXPECT_EQ(get("ca.pem", "", ""), 200);
      EXPECT_EQ(get("other.pem", "", ""), 0);  // unknown CA: refused
      // Plaintext HTTP to the HTTPS port gets no HTTP answer.
      FILE* p = popen(absl::StrCat("curl -s -m 10 -o /dev/null -w "
                                   "'%{http_code}' http://127.0.0.1:",
                                   port, "/healthz")
                          .c_str(),
                      "r");
      char buf[16] = {0};
      if (p != nullptr) {
        (void)fread(buf, 1, sizeof(buf) - 1, p);
        pclose(p);
      }
      EXPECT_NE(std::atoi(buf), 200);
    } else {
      EXPECT_EQ(get("ca.pem", "client.pem", "client.key"), 200);
      EXPECT_EQ(get("ca.pem", "", ""), 0);  // no client certificate
      EXPECT_EQ(get("ca.pem", "intruder.pem", "intruder.key"), 0);
    }
    EXPECT_EQ(server.Stop(), 0);
  }
}

TEST_F(TlsTest, UnreadableCertificateFilesAreNamedAtStartup) {
  std::vector<std::string> args = TinyServer();
  args.insert(args.end(),
              {"--tls-cert", F("missing.pem"), "--tls-key", F("server.key")});
  ServerProcess server(RWKV_SERVER_BIN, args, F("bad.log"));
  absl::Status s = server.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("missing.pem"));
}

void WriteKeys(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

TEST(ApiKeyReloadTest, SighupReloadsTheKeysFile) {
  TempDir dir;
  const std::string keys = dir.Sub("keys");
  WriteKeys(keys, HashApiKey("first-key") + " alpha user\n");
  std::vector<std::string> args = TinyServer();
  args.insert(args.end(), {"--api-keys", keys});
  ServerProcess server(RWKV_SERVER_BIN, args, dir.Sub("server.log"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  auto call = [&](const std::string& key) {
    ConnectOptions o;
    o.api_key = key;
    auto client = *ChatClient::Connect(server.address(), o);
    return client->GetModelInfo().status().code();
  };
  EXPECT_EQ(call("first-key"), absl::StatusCode::kOk);
  EXPECT_EQ(call("second-key"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(call(""), absl::StatusCode::kUnauthenticated);

  WriteKeys(keys, HashApiKey("second-key") + " beta user\n");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  absl::StatusCode second = absl::StatusCode::kUnauthenticated;
  for (int i = 0; i < 200 && second != absl::StatusCode::kOk; ++i) {
    absl::SleepFor(absl::Milliseconds(25));
    second = call("second-key");
  }
  EXPECT_EQ(second, absl::StatusCode::kOk) << server.Log();
  EXPECT_EQ(call("first-key"), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(server.Log(), HasSubstr("SIGHUP: reloaded 1 API keys"));

  // A broken file is refused (named in the log); the keys in use stay.
  WriteKeys(keys, "this is not a key line\n");
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  for (int i = 0; i < 200; ++i) {
    if (server.Log().find("keeping the API keys") != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_THAT(server.Log(), HasSubstr("keeping the API keys in use"));
  EXPECT_THAT(server.Log(), HasSubstr("line 1"));
  EXPECT_EQ(call("second-key"), absl::StatusCode::kOk);
  EXPECT_EQ(server.Stop(), 0);
}

// Calls of every kind sent continuously by many clients (some on channels
// opened before the signal, some on new ones) while SIGTERM arrives: every
// call either succeeds or is UNAVAILABLE. 15 rounds, each signal at a
// random moment of the traffic.
TEST(ShutdownRaceTest, EveryCallAroundSigtermSucceedsOrIsUnavailable) {
  TempDir dir;
  std::mt19937 rng(20261203);
  std::map<absl::StatusCode, int> codes;
  std::string unexpected;
  int shutting_down_answers = 0;
  for (int round = 0; round < 15; ++round) {
    std::vector<std::string> args = TinyServer();
    args.insert(args.end(), {"--shutdown-grace", "2"});
    ServerProcess server(RWKV_SERVER_BIN, args,
                         dir.Sub(absl::StrCat("round", round, ".log")));
    ASSERT_TRUE(server.Start().ok()) << server.Log();
    std::atomic<bool> stop{false};
    absl::Mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        std::unique_ptr<ChatClient> shared =
            ChatClient::Connect(server.address());
        shared->set_unary_timeout(absl::Seconds(20));
        shared->set_turn_timeout(absl::Seconds(20));
        std::string session;
        for (int i = 0; !stop.load(); ++i) {
          // Half the threads open a new channel per call: calls that also
          // connect around the signal.
          std::unique_ptr<ChatClient> fresh;
          ChatClient* c = shared.get();
          if (t % 2 == 1) {
            fresh = ChatClient::Connect(server.address());
            fresh->set_unary_timeout(absl::Seconds(20));
            fresh->set_turn_timeout(absl::Seconds(20));
            c = fresh.get();
          }
          absl::Status s;
          switch (i % 3) {
            case 0:
              s = c->GetModelInfo().status();
              break;
            case 1: {
              auto info = c->CreateSession(rwkv::v1::CreateSessionRequest());
              s = info.status();
              if (info.ok()) session = info->session_id();
              break;
            }
            default: {
              if (session.empty()) continue;
              rwkv::v1::GenerateRequest req;
              req.set_session_id(session);
              req.set_text("go");
              req.set_max_tokens(8);
              req.set_ignore_eos(true);
              s = c->Generate(req, nullptr).status();
              break;
            }
          }
          absl::MutexLock lock(&mu);
          ++codes[s.code()];
          if (absl::IsUnavailable(s) &&
              absl::StrContains(s.message(), "shutting down")) {
            ++shutting_down_answers;
          }
          if (!s.ok() && !absl::IsUnavailable(s) && unexpected.size() < 2000) {
            absl::StrAppend(&unexpected, "round ", round, ": ", s.ToString(),
                            "\n");
          }
        }
      });
    }
    absl::SleepFor(absl::Milliseconds(100 + rng() % 300));
    const int exit_code = server.Stop();      // SIGTERM, waits for the exit
    absl::SleepFor(absl::Milliseconds(100));  // calls after the exit too
    stop = true;
    for (std::thread& th : threads) th.join();
    EXPECT_EQ(exit_code, 0) << server.Log();
  }
  EXPECT_EQ(unexpected, "") << "every call must be OK or UNAVAILABLE";
  EXPECT_GT(codes[absl::StatusCode::kOk], 100);
  EXPECT_GT(codes[absl::StatusCode::kUnavailable], 0);
  // Some calls reached the draining server and were told why.
  EXPECT_GT(shutting_down_answers, 0);
  for (const auto& [code, n] : codes) {
    std::cout << absl::StatusCodeToString(code) << ": " << n << "\n";
  }
  std::cout << "UNAVAILABLE 'shutting down' from the server: "
            << shutting_down_answers << "\n";
}

}  // namespace
}  // namespace rwkv::server
