#include "pipeline/curl_check.h"

#include <mutex>
#include <string>

#include "core/error.h"

namespace flam::pipeline {

void curl_check(CURLcode code, const char* call) {
  if (code != CURLE_OK) {
    throw Error(ErrorKind::kInternal, std::string(call) + ": " + curl_easy_strerror(code));
  }
}

void curl_check(CURLMcode code, const char* call) {
  if (code != CURLM_OK) {
    throw Error(ErrorKind::kInternal, std::string(call) + ": " + curl_multi_strerror(code));
  }
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace flam::pipeline
