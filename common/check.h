// V4_CHECK: aborts on a broken invariant (a programmer error), with file:line and a message.
// Never use it for user input, files or anything else that can be wrong at run time: those
// are Status values (common/status.h).
#pragma once

#include <sstream>

namespace v4agent::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `V4_CHECK(x) << msg` discard the stream in the passing branch of a ternary.
struct CheckVoidify {
  void operator&(std::ostream&) {}
};

}  // namespace v4agent::internal

#define V4_CHECK(cond)                           \
  (cond) ? (void)0                               \
         : ::v4agent::internal::CheckVoidify() & \
               ::v4agent::internal::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define V4_CHECK_EQ(a, b) V4_CHECK((a) == (b)) << "(" << (a) << " vs " << (b) << ") "
#define V4_CHECK_NE(a, b) V4_CHECK((a) != (b)) << "(" << (a) << " vs " << (b) << ") "
#define V4_CHECK_LT(a, b) V4_CHECK((a) < (b)) << "(" << (a) << " vs " << (b) << ") "
#define V4_CHECK_LE(a, b) V4_CHECK((a) <= (b)) << "(" << (a) << " vs " << (b) << ") "
#define V4_CHECK_GT(a, b) V4_CHECK((a) > (b)) << "(" << (a) << " vs " << (b) << ") "
#define V4_CHECK_GE(a, b) V4_CHECK((a) >= (b)) << "(" << (a) << " vs " << (b) << ") "

#ifdef NDEBUG
#define V4_DCHECK(cond) \
  while (false) V4_CHECK(cond)
#else
#define V4_DCHECK(cond) V4_CHECK(cond)
#endif
