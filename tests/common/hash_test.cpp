// Hash64 is stored in session files and fingerprints, so its values are pinned: a change to
// the function must be a format version change, not a silent mismatch.
#include "common/hash.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace v4agent {
namespace {

TEST(HashTest, ValuesArePinned) {
  EXPECT_EQ(Hash64(""), Hash64("", 0));
  EXPECT_NE(Hash64("a"), Hash64("b"));
  EXPECT_NE(Hash64("a", 1), Hash64("a", 2));
  // Recorded once; they must never change (session files store them).
  EXPECT_EQ(Hash64("v4agent"), 0x278defb9eddc3ae7ull);
  std::string long_text(1000, 'x');
  EXPECT_EQ(Hash64(long_text), 0x73ebffd9b4fdf4cdull);
}

TEST(HashTest, StreamEqualsOneShotWhateverTheSplit) {
  std::mt19937 rng(1);
  std::string data(5000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{64},
                   size_t{1000}, size_t{5000}}) {
    const uint64_t want = Hash64(data.data(), n);
    for (int trial = 0; trial < 20; ++trial) {
      Hash64Stream s;
      size_t at = 0;
      while (at < n) {
        size_t piece = std::min<size_t>(n - at, rng() % 70);
        s.Update(data.data() + at, piece);
        at += piece;
      }
      ASSERT_EQ(s.Finish(), want) << "n=" << n;
    }
  }
}

TEST(HashTest, AnyFlippedBitChangesTheHash) {
  std::string data(300, 'q');
  const uint64_t base = Hash64(data);
  for (size_t i = 0; i < data.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      data[i] ^= static_cast<char>(1 << b);
      ASSERT_NE(Hash64(data), base) << i << ":" << b;
      data[i] ^= static_cast<char>(1 << b);
    }
  }
}

TEST(HashTest, HasherSeparatesFields) {
  EXPECT_NE(Hasher().Update("ab").Update("c").Digest(), Hasher().Update("a").Update("bc").Digest());
  EXPECT_EQ(Hasher().Update("ab").Update("c").Digest(), Hasher().Update("ab").Update("c").Digest());
}

}  // namespace
}  // namespace v4agent
