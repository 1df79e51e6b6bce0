// TurnResponder: answers an HTTP request with a turn's reply, read from its
// TurnChannel and presented by a ReplyFormat.
//  * Until the first piece of the reply arrives nothing is sent, so an
//    error found before the turn produced anything (bad request, unknown
//    session, busy session, full queue) is an ordinary HTTP error with its
//    status code.
//  * Non-streaming: waits for the end and sends Whole() (or the error).
//  * Streaming: 200 with text/event-stream; each piece of text is written as
//    it comes (one event per chunk); the end is StreamEnd() or, after a
//    failure, StreamError().
// While waiting it checks every `poll` whether the client has gone
// (ConnectionProbe; for streams also a failed write): then the turn is
// cancelled, stops at the next scheduler step and is rolled back, and
// nothing more is sent. Runs on the handler's thread (and, for streams, in
// httplib's content provider on that same thread afterwards).
#ifndef RWKV_SERVER_HTTP_TURN_RESPONDER_H_
#define RWKV_SERVER_HTTP_TURN_RESPONDER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "httplib.h"
#include "server/http/active_turns.h"
#include "server/http/connection_probe.h"
#include "server/http/reply_format.h"
#include "server/http/turn_channel.h"

namespace rwkv::server {

class TurnResponder {
 public:
  // The turn is running (or has already ended) with `channel` as its
  // stream; `registration` keeps it in the server's active turns until the
  // answer is done.
  TurnResponder(std::shared_ptr<TurnChannel> channel,
                std::shared_ptr<ReplyFormat> format, ConnectionProbe probe,
                ActiveTurns::Registration registration,
                absl::Duration poll = absl::Milliseconds(100));

  // Fills `res` (for a stream, installs the content provider that writes
  // it). Consumes the responder.
  void Respond(bool stream, httplib::Response& res) &&;

 private:
  struct State;
  // The next event; cancels the turn if the client has gone meanwhile.
  // Never returns nullopt before the turn's end.
  static TurnChannel::Event NextEvent(State& s);
  // The status the turn ended with, as the client should see it.
  static absl::Status Outcome(const State& s, const absl::Status& status);
  static void RespondWhole(State& s, httplib::Response& res);
  // One call of the content provider: writes what has come.
  static bool Provide(State& s, httplib::DataSink& sink);

  std::shared_ptr<State> state_;
};

// Starts a turn with `start` (given the stream it must write to), keeps it
// in `turns` while it runs, and answers `req` with it (see TurnResponder).
void AnswerWithTurn(
    const httplib::Request& req, httplib::Response& res, ActiveTurns& turns,
    std::shared_ptr<ReplyFormat> format, bool stream,
    const std::function<void(std::shared_ptr<TurnStream>)>& start);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_TURN_RESPONDER_H_
