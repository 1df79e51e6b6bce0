#include "client/chat_repl.h"

#include <cctype>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "client/grpc_status.h"

namespace rwkv::client {
namespace {

std::string FormatTimeMs(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

}  // namespace

ChatRepl::ChatRepl(ChatClient* client, const ChatOptions& options,
                   std::ostream* out, std::ostream* err)
    : client_(client), options_(options), out_(out), err_(err) {}

rwkv::v1::CreateSessionRequest ChatRepl::NewSessionRequest(
    const std::string& session_id) const {
  rwkv::v1::CreateSessionRequest request;
  request.set_session_id(session_id);
  request.set_ttl_seconds(options_.ttl_seconds);
  request.set_initial_state_name(options_.initial_state);
  return request;
}

absl::Status ChatRepl::Start() {
  if (!options_.session.empty()) return SwitchTo(options_.session);
  rwkv::v1::CreateSessionRequest request = NewSessionRequest("");
  absl::StatusOr<rwkv::v1::SessionInfo> info = client_->CreateSession(request);
  if (!info.ok()) return info.status();
  session_id_ = info->session_id();
  return absl::OkStatus();
}

absl::Status ChatRepl::SwitchTo(const std::string& session_id) {
  absl::StatusOr<rwkv::v1::SessionInfo> info =
      client_->GetOrCreateSession(NewSessionRequest(session_id));
  if (!info.ok()) return info.status();
  session_id_ = info->session_id().empty() ? session_id : info->session_id();
  return absl::OkStatus();
}

absl::Status ChatRepl::SendMessage(const std::string& text) {
  cancel_requested_.store(false);
  // Chat replies start with the space after "Assistant:"; do not print the
  // leading whitespace of a chat reply.
  bool at_start = !options_.generate;
  ChunkCallback print = [&](const rwkv::v1::GenerateResponse& chunk) {
    absl::string_view piece = chunk.text();
    if (at_start) {
      while (!piece.empty() &&
             std::isspace(static_cast<unsigned char>(piece.front()))) {
        piece.remove_prefix(1);
      }
      if (!piece.empty()) at_start = false;
    }
    out_->write(piece.data(), static_cast<std::streamsize>(piece.size()));
    out_->flush();
    return !cancel_requested_.load();
  };
  // RequestCancel() only sets a flag (it may run in a signal handler); this
  // watcher turns it into a cancellation even while no chunk arrives.
  TurnCanceller canceller;
  absl::Notification turn_done;
  std::thread watcher([&] {
    do {
      if (cancel_requested_.load()) {
        canceller.Cancel();
        return;
      }
    } while (!turn_done.WaitForNotificationWithTimeout(absl::Milliseconds(20)));
  });
  absl::StatusOr<TurnResult> result;
  if (options_.generate) {
    rwkv::v1::GenerateRequest request;
    request.set_session_id(session_id_);
    request.set_text(text);
    *request.mutable_sampling() = options_.sampling;
    request.set_max_tokens(options_.max_tokens);
    result = client_->Generate(request, print, &canceller);
  } else {
    rwkv::v1::ChatRequest request;
    request.set_session_id(session_id_);
    request.set_message(text);
    *request.mutable_sampling() = options_.sampling;
    request.set_max_tokens(options_.max_tokens);
    result = client_->Chat(request, print, &canceller);
  }
  turn_done.Notify();
  watcher.join();
  *out_ << "\n";
  out_->flush();
  if (!result.ok()) {
    if (absl::IsCancelled(result.status()) && cancel_requested_.load()) {
      *err_ << "[cancelled]\n";
      return absl::OkStatus();
    }
    return result.status();
  }
  return absl::OkStatus();
}

absl::Status ChatRepl::Execute(const ReplCommand& command, bool* quit) {
  using Kind = ReplCommand::Kind;
  *quit = false;
  switch (command.kind) {
    case Kind::kEmpty:
      return absl::OkStatus();
    case Kind::kMessage:
      return SendMessage(command.text);
    case Kind::kNew: {
      rwkv::v1::CreateSessionRequest request = NewSessionRequest("");
      absl::StatusOr<rwkv::v1::SessionInfo> info =
          client_->CreateSession(request);
      if (!info.ok()) return info.status();
      session_id_ = info->session_id();
      *out_ << "session " << session_id_ << "\n";
      return absl::OkStatus();
    }
    case Kind::kSession: {
      absl::Status s = SwitchTo(command.arg);
      if (s.ok()) *out_ << "session " << session_id_ << "\n";
      return s;
    }
    case Kind::kReset: {
      absl::StatusOr<rwkv::v1::SessionInfo> info =
          client_->ResetSession(session_id_);
      if (!info.ok()) return info.status();
      *out_ << "session " << session_id_ << " reset (" << info->token_count()
            << " tokens)\n";
      return absl::OkStatus();
    }
    case Kind::kFork: {
      absl::StatusOr<rwkv::v1::SessionInfo> info =
          client_->ForkSession(session_id_, command.arg, options_.ttl_seconds);
      if (!info.ok()) return info.status();
      *out_ << "forked " << session_id_ << " -> " << info->session_id()
            << "; now in " << info->session_id() << "\n";
      session_id_ = info->session_id();
      return absl::OkStatus();
    }
    case Kind::kExport: {
      absl::StatusOr<rwkv::v1::ExportStateResponse> response =
          client_->ExportStateToFile(session_id_, "", command.arg);
      if (!response.ok()) return response.status();
      *out_ << "wrote " << command.arg << " (" << response->state().size()
            << " bytes, " << response->token_count() << " tokens)\n";
      return absl::OkStatus();
    }
    case Kind::kImport: {
      rwkv::v1::ImportStateRequest request;
      request.set_session_id(session_id_);
      request.set_replace(true);
      request.set_ttl_seconds(options_.ttl_seconds);
      absl::StatusOr<rwkv::v1::SessionInfo> info =
          client_->ImportStateFromFile(command.arg, std::move(request));
      if (!info.ok()) return info.status();
      *out_ << "session " << session_id_ << " now holds " << command.arg << " ("
            << info->token_count() << " tokens)\n";
      return absl::OkStatus();
    }
    case Kind::kInspect:
      return PrintInspect();
    case Kind::kTtl: {
      absl::StatusOr<rwkv::v1::SessionInfo> info =
          client_->TouchSession(session_id_, command.ttl_seconds);
      if (!info.ok()) return info.status();
      *out_ << "session " << session_id_ << " ttl " << info->ttl_seconds()
            << " s, expires " << FormatTimeMs(info->expires_at_ms()) << "\n";
      return absl::OkStatus();
    }
    case Kind::kInfo:
      return PrintInfo();
    case Kind::kHelp:
      *out_ << ReplHelpText();
      return absl::OkStatus();
    case Kind::kQuit:
      *quit = true;
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status ChatRepl::PrintInfo() {
  absl::StatusOr<rwkv::v1::SessionInfo> info = client_->GetSession(session_id_);
  if (!info.ok()) return info.status();
  *out_ << "session     " << info->session_id() << "\n"
        << "tokens      " << info->token_count() << "\n"
        << "state bytes " << info->state_bytes() << "\n"
        << "created     " << FormatTimeMs(info->created_at_ms()) << "\n"
        << "last used   " << FormatTimeMs(info->last_used_at_ms()) << "\n"
        << "expires     " << FormatTimeMs(info->expires_at_ms()) << " (ttl "
        << info->ttl_seconds() << " s)\n";
  absl::StatusOr<rwkv::v1::ModelInfo> model = client_->GetModelInfo();
  if (!model.ok()) return model.status();
  *out_ << "model       " << model->architecture() << " n_layer "
        << model->n_layer() << " n_embd " << model->n_embd() << " vocab "
        << model->vocab_size() << " (" << model->tokenizer() << ") on "
        << model->device() << " " << model->dtype() << "\n";
  if (!model->model_path().empty()) {
    *out_ << "model file  " << model->model_path() << "\n";
  }
  *out_ << "server      " << options_.server << "\n";
  return absl::OkStatus();
}

absl::Status ChatRepl::PrintInspect() {
  absl::StatusOr<rwkv::v1::InspectSessionResponse> inspect =
      client_->InspectSession(session_id_);
  if (!inspect.ok()) return inspect.status();
  if (!inspect->report().empty()) {
    *out_ << inspect->report();
    if (inspect->report().back() != '\n') *out_ << "\n";
    return absl::OkStatus();
  }
  *out_ << "session " << inspect->session_id() << " ("
        << inspect->architecture() << "), " << inspect->token_count()
        << " tokens, " << inspect->state_bytes() << " bytes\n";
  for (const rwkv::v1::ComponentStats& c : inspect->components()) {
    *out_ << "  " << c.name() << " [" << absl::StrJoin(c.shape(), ", ")
          << "] mean|x| " << c.mean_abs() << " max|x| " << c.max_abs() << "\n";
  }
  *out_ << (inspect->healthy() ? "healthy" : "UNHEALTHY") << "\n";
  for (const std::string& p : inspect->problems()) *out_ << "  " << p << "\n";
  return absl::OkStatus();
}

int ChatRepl::Run(std::istream& in, bool interactive) {
  int failures = 0;
  std::string line;
  while (true) {
    if (interactive) {
      *out_ << "[" << session_id_ << "]> ";
      out_->flush();
    }
    if (!std::getline(in, line)) break;
    absl::StatusOr<ReplCommand> command = ParseReplCommand(line);
    if (!command.ok()) {
      *err_ << command.status().message() << "\n";
      ++failures;
      continue;
    }
    bool quit = false;
    absl::Status s = Execute(*command, &quit);
    if (!s.ok()) {
      const char* what = command->kind == ReplCommand::Kind::kMessage
                             ? (options_.generate ? "Generate" : "Chat")
                             : "command";
      *err_ << DescribeError(what, s) << "\n";
      ++failures;
    }
    if (quit) break;
  }
  if (interactive) *out_ << "\n";
  return failures;
}

}  // namespace rwkv::client
