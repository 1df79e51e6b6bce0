#include "server/http/turn_responder.h"

#include <utility>

#include "absl/time/clock.h"
#include "server/http/http_reply.h"
#include "server/http/http_request_log.h"

namespace rwkv::server {

struct TurnResponder::State {
  State(std::shared_ptr<TurnChannel> c, std::shared_ptr<ReplyFormat> f,
        ConnectionProbe p, ActiveTurns::Registration r, absl::Duration d)
      : channel(std::move(c)),
        format(std::move(f)),
        probe(p),
        registration(std::move(r)),
        poll(d) {}

  std::shared_ptr<TurnChannel> channel;
  std::shared_ptr<ReplyFormat> format;
  const ConnectionProbe probe;
  ActiveTurns::Registration registration;
  absl::Duration poll;
  // An event read but not handled yet (the first one).
  std::optional<TurnChannel::Event> pending;
  absl::Time next_probe = absl::InfinitePast();
  // The request's record, for a stream (finished when the stream ends).
  std::unique_ptr<HttpRequestLog> log;
  std::string text;  // the reply so far
  TurnChunk last;    // the chunk with the finish reason, once it came
  bool started = false;
  bool done = false;
};

TurnResponder::TurnResponder(std::shared_ptr<TurnChannel> channel,
                             std::shared_ptr<ReplyFormat> format,
                             ConnectionProbe probe,
                             ActiveTurns::Registration registration,
                             absl::Duration poll)
    : state_(std::make_shared<State>(std::move(channel), std::move(format),
                                     probe, std::move(registration), poll)) {}

TurnChannel::Event TurnResponder::NextEvent(State& s) {
  if (s.pending.has_value()) return *std::exchange(s.pending, std::nullopt);
  for (;;) {
    // The connection is probed every `poll`, also while events keep coming.
    if (const absl::Time now = absl::Now(); now >= s.next_probe) {
      s.next_probe = now + s.poll;
      if (!s.channel->IsCancelled() && s.probe.PeerClosed()) {
        s.channel->Cancel(
            absl::CancelledError("the client closed the connection"));
      }
    }
    if (std::optional<TurnChannel::Event> e = s.channel->Next(s.poll)) {
      return *std::move(e);
    }
  }
}

absl::Status TurnResponder::Outcome(const State& s,
                                    const absl::Status& status) {
  // A turn the server cancelled (shutdown) reports why, not CANCELLED.
  const absl::Status reason = s.channel->cancel_reason();
  if (absl::IsCancelled(status) && !reason.ok()) return reason;
  return status;
}

void TurnResponder::Respond(bool stream, httplib::Response& res) && {
  State& s = *state_;
  s.pending = NextEvent(s);
  if (s.pending->finish.has_value() && !s.pending->finish->ok()) {
    // Nothing was produced: a plain HTTP error.
    return SendError(res, Outcome(s, *s.pending->finish));
  }
  if (!stream) return RespondWhole(s, res);
  if (HttpRequestLog* log = HttpRequestLog::Current()) s.log = log->Defer();
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state = state_](size_t /*offset*/, httplib::DataSink& sink) {
        return Provide(*state, sink);
      });
}

void TurnResponder::RespondWhole(State& s, httplib::Response& res) {
  for (;;) {
    TurnChannel::Event e = NextEvent(s);
    if (e.chunk.has_value()) {
      s.text += e.chunk->text;
      if (e.chunk->finish_reason != FinishReason::kNone) s.last = *e.chunk;
      continue;
    }
    if (!e.finish->ok()) return SendError(res, Outcome(s, *e.finish));
    if (HttpRequestLog* log = HttpRequestLog::Current()) log->SetUsage(s.last);
    return SendJson(res, s.format->Whole(s.text, s.last));
  }
}

bool TurnResponder::Provide(State& s, httplib::DataSink& sink) {
  if (s.done) {
    sink.done();
    return true;
  }
  std::string out;
  if (!s.started) {
    s.started = true;
    out = s.format->StreamStart();
  }
  // At least one event per call; more if they are already there.
  TurnChannel::Event e = NextEvent(s);
  if (e.chunk.has_value()) {
    s.text += e.chunk->text;
    if (e.chunk->finish_reason != FinishReason::kNone) s.last = *e.chunk;
    out += s.format->StreamChunk(*e.chunk);
  } else {
    s.done = true;
    const absl::Status outcome = Outcome(s, *e.finish);
    out += outcome.ok() ? s.format->StreamEnd(s.text, s.last)
                        : s.format->StreamError(outcome);
    if (s.log != nullptr) {
      if (outcome.ok()) s.log->SetUsage(s.last);
      s.log->SetStatus(outcome);
    }
  }
  if (s.channel->IsCancelled() &&
      absl::IsCancelled(s.channel->cancel_reason())) {
    return false;  // the client has gone: drop the connection
  }
  if (!out.empty() && !sink.write(out.data(), out.size())) {
    s.channel->Cancel(absl::CancelledError("the client closed the connection"));
    return false;
  }
  if (s.done) {
    sink.done();
    if (s.log != nullptr) s.log->Finish(200);
  }
  return true;
}

}  // namespace rwkv::server

namespace rwkv::server {

void AnswerWithTurn(
    const httplib::Request& req, httplib::Response& res, ActiveTurns& turns,
    std::shared_ptr<ReplyFormat> format, bool stream,
    const std::function<void(std::shared_ptr<TurnStream>)>& start) {
  auto channel = std::make_shared<TurnChannel>();
  ActiveTurns::Registration registration = turns.Add(channel);
  ConnectionProbe probe(req.local_addr, req.local_port, req.remote_addr,
                        req.remote_port);
  start(channel);
  TurnResponder(std::move(channel), std::move(format), probe,
                std::move(registration))
      .Respond(stream, res);
}

}  // namespace rwkv::server
