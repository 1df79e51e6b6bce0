// common/byte_size.h: "512M"-style byte counts, both ways.
#include "common/byte_size.h"

#include <string>

#include "gtest/gtest.h"

namespace rwkv::common {
namespace {

TEST(ByteSizeTest, ParsesCountsWithBinarySuffixes) {
  EXPECT_EQ(*ParseByteSize("0"), 0);
  EXPECT_EQ(*ParseByteSize("4096"), 4096);
  EXPECT_EQ(*ParseByteSize("512K"), 524288);
  EXPECT_EQ(*ParseByteSize("512k"), 524288);
  EXPECT_EQ(*ParseByteSize("256M"), 268435456);
  EXPECT_EQ(*ParseByteSize("2g"), int64_t{2147483648});
  EXPECT_EQ(*ParseByteSize("1048576G"), kMaxByteSize);
}

TEST(ByteSizeTest, RejectsWhatIsNotACount) {
  for (const char* bad : {"", "M", "-1", "-1M", "12Q", "1.5M", "0x10", "1e3",
                          "1048577G", "99999999999999999999"}) {
    absl::StatusOr<int64_t> n = ParseByteSize(bad);
    ASSERT_FALSE(n.ok()) << bad << " -> " << *n;
    EXPECT_EQ(
        n.status().message(),
        std::string("expected a byte count like 512M, got '") + bad + "'");
  }
}

TEST(ByteSizeTest, FormatsTheShortestExactForm) {
  EXPECT_EQ(FormatByteSize(0), "0");
  EXPECT_EQ(FormatByteSize(1536), "1536");
  EXPECT_EQ(FormatByteSize(1024), "1K");
  EXPECT_EQ(FormatByteSize(268435456), "256M");
  EXPECT_EQ(FormatByteSize(int64_t{3} << 30), "3G");
  EXPECT_EQ(FormatByteSize((int64_t{1} << 30) + 1024), "1048577K");
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{1023}, int64_t{1} << 20,
                    (int64_t{5} << 30) + 7, kMaxByteSize}) {
    EXPECT_EQ(*ParseByteSize(FormatByteSize(n)), n) << n;
  }
}

}  // namespace
}  // namespace rwkv::common
