#include "server/sched/stop_matcher.h"

#include "gtest/gtest.h"

namespace rwkv::server {
namespace {

TEST(StopMatcherTest, WithoutStopsEverythingPassesThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.Push("ab"), "ab");
  EXPECT_EQ(m.Push("\n\n"), "\n\n");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcherTest, HoldsBackAPossibleStartAndCutsAtTheStop) {
  StopMatcher m({"\n\n"});
  EXPECT_EQ(m.Push("Hi\n"), "Hi");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.Push("x"), "\nx");
  EXPECT_EQ(m.Push("\n"), "");
  EXPECT_EQ(m.Push("\nmore"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Push("after"), "");
}

TEST(StopMatcherTest, EarliestStopWinsAndFlushReturnsHeldText) {
  StopMatcher m({"END", "ND!"});
  EXPECT_EQ(m.Push("abcEN"), "abc");
  EXPECT_EQ(m.Flush(), "EN");
  StopMatcher m2({"END", "ND!"});
  EXPECT_EQ(m2.Push("xEND!"), "x");
  EXPECT_TRUE(m2.stopped());
}

TEST(StopMatcherTest, NeverSplitsAUtf8Character) {
  // The stop starts with the first byte of "é" (C3 A9 vs C3 A8).
  StopMatcher m({"\xC3\xA8!"});
  const std::string out = m.Push("a\xC3\xA9");
  EXPECT_EQ(out, "a\xC3\xA9");
  StopMatcher m2({"\xC3\xA9!"});
  EXPECT_EQ(m2.Push("a\xC3\xA9"), "a");
  EXPECT_EQ(m2.Push("?"), "\xC3\xA9?");
}

}  // namespace
}  // namespace rwkv::server
