#include "server/status_util.h"

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

absl::Status Propagates(const absl::Status& inner, bool* reached_end) {
  RWKV_RETURN_IF_ERROR(inner);
  *reached_end = true;
  return absl::OkStatus();
}

TEST(StatusUtilTest, ReturnIfErrorReturnsTheError) {
  bool reached = false;
  EXPECT_EQ(Propagates(absl::NotFoundError("x"), &reached).code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(reached);
  EXPECT_TRUE(Propagates(absl::OkStatus(), &reached).ok());
  EXPECT_TRUE(reached);
}

}  // namespace
}  // namespace rwkv::server
