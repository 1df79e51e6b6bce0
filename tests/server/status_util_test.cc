#include "server/rpc/status_util.h"

#include <string>

#include "gtest/gtest.h"

namespace rwkv::server {
namespace {

TEST(StatusUtilTest, EveryCanonicalCodeMapsToTheSameGrpcCode) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  for (int code = 1; code <= 16; ++code) {
    const absl::Status s(static_cast<absl::StatusCode>(code), "why");
    const grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), "why");
  }
}

TEST(StatusUtilTest, LongMessagesAreCutAndSaySo) {
  const std::string long_message(100000, 'x');
  const grpc::Status g = ToGrpcStatus(absl::InvalidArgumentError(long_message));
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(g.error_message().size(), kMaxStatusMessageBytes + 64);
  EXPECT_EQ(g.error_message().substr(0, 10), "xxxxxxxxxx");
  EXPECT_NE(g.error_message().find("(message of 100000 bytes cut)"),
            std::string::npos);
}

}  // namespace
}  // namespace rwkv::server
