#include "core/mpi_check.h"

#include <string>

#include "core/error.h"

namespace flam::detail {

void throw_mpi_error(int code, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {0};
  int len = 0;
  MPI_Error_string(code, text, &len);
  ErrorContext ctx;
  ctx.file = file;
  ctx.line = line;
  throw Error(ErrorKind::kComm, std::string(call) + " failed: " + std::string(text, len), ctx);
}

}  // namespace flam::detail
