// The one checking wrapper for libcurl's setup calls (SYSCHECK's role for curl): a failure there
// is a libcurl built without a needed feature or out of memory, never bad input, so it throws
// flam::Error(kInternal) naming the call. Transfer results (CURLcode of a finished transfer) are
// not checked here: callers turn those into reasons or kNetwork errors with the URL.
//
//   CURL_CHECK(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
//
// Thread safety: pure functions; call from any thread.
#pragma once

#include <curl/curl.h>

namespace flam::pipeline {

void curl_check(CURLcode code, const char* call);
void curl_check(CURLMcode code, const char* call);
// curl_global_init, once per process, before the first handle.
void curl_init_once();

}  // namespace flam::pipeline

#define CURL_CHECK(call) ::flam::pipeline::curl_check((call), #call)
