// S3Client: SigV4 signing (canonical request -> string to sign -> HMAC chain), one curl easy handle
// per request with a retry loop around it, multipart uploads, ListObjectsV2 pagination, and
// S3Source (a streamed GET over pipeline/byte_source's HttpSource that resumes with Range).
#include "pipeline/s3.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "pipeline/curl_check.h"

namespace flam::pipeline {
namespace {

constexpr std::string_view kScheme = "s3://";

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

ErrorContext at_url(const std::string& url, int64_t offset = -1) {
  ErrorContext context;
  context.url = url;
  context.offset = offset;
  return context;
}

std::string hex(const unsigned char* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[data[i] >> 4];
    out[2 * i + 1] = digits[data[i] & 15];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return hex(digest, sizeof digest);
}

std::string hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// RFC 3986 percent-encoding as SigV4 wants it: unreserved characters kept, '/' kept in paths.
std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

// The text of the first <tag>...</tag> in xml, entities decoded; "" when absent.
std::string xml_value(std::string_view xml, std::string_view tag, size_t* from = nullptr) {
  const std::string open = "<" + std::string(tag) + ">";
  const std::string close = "</" + std::string(tag) + ">";
  size_t start = xml.find(open, from ? *from : 0);
  if (start == std::string_view::npos) return "";
  start += open.size();
  size_t end = xml.find(close, start);
  if (end == std::string_view::npos) return "";
  if (from) *from = end + close.size();
  std::string raw(xml.substr(start, end - start));
  static const std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (size_t i = 0; i < raw.size();) {
    bool replaced = false;
    if (raw[i] == '&') {
      for (const auto& [entity, c] : kEntities) {
        if (raw.compare(i, entity.size(), entity) == 0) {
          out.push_back(c);
          i += entity.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(raw[i++]);
  }
  return out;
}

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string session_token;
};

// ~/.aws/credentials: INI sections "[profile]" with aws_access_key_id = ... lines.
Credentials credentials_from_file(const std::string& path, const std::string& profile) {
  Credentials c;
  std::ifstream in(path);
  std::string line;
  bool in_profile = false;
  auto trim = [](const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r");
    const size_t b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
  };
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      in_profile = trim(line.substr(1, line.size() - 2)) == profile;
      continue;
    }
    const size_t eq = line.find('=');
    if (!in_profile || eq == std::string::npos) continue;
    const std::string key = trim(line.substr(0, eq));
    const std::string value = trim(line.substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key = value;
    if (key == "aws_secret_access_key") c.secret_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  return c;
}

struct Response {
  long status = 0;
  std::string body;
  std::string etag;
  std::string retry_after;
  int64_t content_length = -1;
  int64_t max_bytes = 0;
  bool over_limit = false;
  CURLcode result = CURLE_OK;
  std::string curl_error;
};

struct Request {
  std::string method = "GET";
  std::string url;  // s3:// name, for messages
  S3Url where;
  std::map<std::string, std::string> query;  // sorted, as SigV4 wants
  std::vector<std::string> headers;          // unsigned extra headers ("Range: ...")
  std::string_view body;
  std::string content_type;
  int64_t max_bytes = 0;  // GET: fail past this many body bytes; 0: no limit
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Response*>(user);
  if (r->max_bytes > 0 && static_cast<int64_t>(r->body.size() + size * count) > r->max_bytes) {
    r->over_limit = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  r->body.append(data, size * count);
  return size * count;
}

size_t read_header(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string line(data, size * count);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    const size_t a = value.find_first_not_of(" \t");
    const size_t b = value.find_last_not_of(" \t\r\n");
    value = a == std::string::npos ? "" : value.substr(a, b - a + 1);
    if (name == "etag") r->etag = value;
    if (name == "retry-after") r->retry_after = value;
    if (name == "content-length") r->content_length = std::strtoll(value.c_str(), nullptr, 10);
  }
  return size * count;
}

struct UploadCursor {
  std::string_view body;
  size_t at = 0;
};

size_t read_upload(char* out, size_t size, size_t count, void* user) {
  auto* cursor = static_cast<UploadCursor*>(user);
  const size_t n = std::min(size * count, cursor->body.size() - cursor->at);
  std::memcpy(out, cursor->body.data() + cursor->at, n);
  cursor->at += n;
  return n;
}

bool retryable_code(const std::string& code) {
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "RequestTimeTooSkewed";
}

bool retryable(long status, const std::string& code, CURLcode result) {
  if (result != CURLE_OK) return true;  // refused, reset, timed out: try again
  return status == 500 || status == 502 || status == 503 || status == 504 || retryable_code(code);
}

[[noreturn]] void throw_status(const std::string& method, const std::string& url, long status,
                               const std::string& body, int attempts) {
  const std::string code = xml_value(body, "Code");
  const std::string message = xml_value(body, "Message");
  std::string what = "s3 " + method + ": http status " + std::to_string(status);
  if (!code.empty()) what += " " + code;
  if (!message.empty()) what += " (" + message + ")";
  if (attempts > 1) what += " after " + std::to_string(attempts) + " attempts";
  ErrorKind kind = ErrorKind::kIo;
  if (code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "ExpiredToken" ||
      code == "InvalidToken" || code == "AccessDenied" || (code.empty() && status == 403)) {
    kind = ErrorKind::kConfig;
    what +=
        "; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or the AWS_PROFILE "
        "credentials";
  } else if (code == "NoSuchBucket") {
    kind = ErrorKind::kConfig;
    what += "; the bucket does not exist (check the s3:// name and AWS_ENDPOINT_URL)";
  } else if (status >= 500 || retryable_code(code)) {
    kind = ErrorKind::kNetwork;
  }
  throw Error(kind, what, at_url(url));
}

double backoff_for(const S3Options& options, int attempt, const std::string& retry_after) {
  double wait =
      std::min(5.0, options.backoff_seconds * static_cast<double>(1 << std::min(attempt, 16)));
  if (!retry_after.empty()) {
    char* end = nullptr;
    const double server = std::strtod(retry_after.c_str(), &end);
    if (end != retry_after.c_str() && server >= 0) wait = std::min(30.0, std::max(wait, server));
  }
  return wait;
}

void sleep_seconds(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

}  // namespace

bool is_s3_url(const std::string& name) { return name.compare(0, kScheme.size(), kScheme) == 0; }

S3Url parse_s3_url(const std::string& url) {
  if (!is_s3_url(url)) {
    throw Error(ErrorKind::kConfig, "not an s3:// name", at_url(url));
  }
  const std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  S3Url out;
  out.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) out.key = rest.substr(slash + 1);
  const bool bucket_ok =
      out.bucket.size() >= 3 && out.bucket.size() <= 63 &&
      std::all_of(out.bucket.begin(), out.bucket.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
      });
  if (!bucket_ok) {
    throw Error(ErrorKind::kConfig,
                "malformed s3:// name: the bucket must be 3-63 characters of a-z, 0-9, '-', '.'",
                at_url(url));
  }
  return out;
}

namespace {

// The client's state and request machinery (S3Client::Impl is this, named so that S3Source below
// can hold it).
struct S3Core {
  S3Options options;
  Credentials credentials;
  std::string region;
  std::string scheme;     // "http" or "https"
  std::string host;       // endpoint host[:port]
  std::string base_path;  // endpoint path prefix, without a trailing '/'
  bool virtual_hosted = false;

  // The request's URL and Host for curl, and its signed headers.
  struct Wire {
    std::string url;
    std::string host;
    std::vector<std::string> headers;
  };

  Wire sign(const Request& r, const std::string& payload_hash) const {
    Wire wire;
    std::string path;
    if (virtual_hosted) {
      wire.host = r.where.bucket + "." + host;
      path = base_path + "/" + r.where.key;
    } else {
      wire.host = host;
      path = base_path + "/" + r.where.bucket;
      if (!r.where.key.empty()) path += "/" + r.where.key;
    }
    const std::string canonical_uri = uri_encode(path, true);
    std::string canonical_query;
    for (const auto& [k, v] : r.query) {
      if (!canonical_query.empty()) canonical_query += "&";
      canonical_query += uri_encode(k, false) + "=" + uri_encode(v, false);
    }
    wire.url = scheme + "://" + wire.host + canonical_uri;
    if (!canonical_query.empty()) wire.url += "?" + canonical_query;

    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
    const std::string amz_date = stamp;
    const std::string day = amz_date.substr(0, 8);

    std::map<std::string, std::string> signed_headers{
        {"host", wire.host}, {"x-amz-content-sha256", payload_hash}, {"x-amz-date", amz_date}};
    if (!credentials.session_token.empty()) {
      signed_headers["x-amz-security-token"] = credentials.session_token;
    }
    if (!r.content_type.empty()) signed_headers["content-type"] = r.content_type;
    std::string canonical_headers, header_names;
    for (const auto& [k, v] : signed_headers) {
      canonical_headers += k + ":" + v + "\n";
      if (!header_names.empty()) header_names += ";";
      header_names += k;
    }
    const std::string canonical_request = r.method + "\n" + canonical_uri + "\n" + canonical_query +
                                          "\n" + canonical_headers + "\n" + header_names + "\n" +
                                          payload_hash;
    const std::string scope = day + "/" + region + "/s3/aws4_request";
    const std::string to_sign =
        "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + sha256_hex(canonical_request);
    const std::string key =
        hmac(hmac(hmac(hmac("AWS4" + credentials.secret_key, day), region), "s3"), "aws4_request");
    const std::string signature =
        hex(reinterpret_cast<const unsigned char*>(hmac(key, to_sign).data()), 32);
    wire.headers.push_back("Authorization: AWS4-HMAC-SHA256 Credential=" + credentials.access_key +
                           "/" + scope + ", SignedHeaders=" + header_names +
                           ", Signature=" + signature);
    for (const auto& [k, v] : signed_headers) wire.headers.push_back(k + ": " + v);
    return wire;
  }

  // One attempt: never throws for a transfer failure (it is in the response).
  Response attempt_once(const Request& r) const {
    Response response;
    response.max_bytes = r.max_bytes;
    const bool has_body = r.method == "PUT" || r.method == "POST";
    const Wire wire = sign(r, has_body ? sha256_hex(r.body) : sha256_hex(""));
    CURL* easy = curl_easy_init();
    if (easy == nullptr) throw Error(ErrorKind::kInternal, "curl_easy_init failed", at_url(r.url));
    curl_slist* headers = nullptr;
    for (const auto& h : wire.headers) headers = curl_slist_append(headers, h.c_str());
    for (const auto& h : r.headers) headers = curl_slist_append(headers, h.c_str());
    headers = curl_slist_append(headers, "Expect:");
    char error_buffer[CURL_ERROR_SIZE] = {};
    UploadCursor cursor{r.body, 0};
    try {
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_URL, wire.url.c_str()));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &write_body));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &read_header));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_HEADERDATA, &response));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error_buffer));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_USERAGENT, "flamboyance/0.1"));
      CURL_CHECK(
          curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                           static_cast<long>(options.stream.connect_timeout_seconds * 1000)));
      CURL_CHECK(curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L));
      CURL_CHECK(
          curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME,
                           std::max(1L, static_cast<long>(options.stream.low_speed_seconds))));
      if (options.stream.deadline_seconds > 0) {
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                                    static_cast<long>(options.stream.deadline_seconds * 1000)));
      }
      if (r.method == "HEAD") {
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_NOBODY, 1L));
      } else if (r.method == "PUT") {
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L));
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_READFUNCTION, &read_upload));
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_READDATA, &cursor));
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE,
                                    static_cast<curl_off_t>(r.body.size())));
      } else if (r.method == "POST") {
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_POST, 1L));
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, r.body.empty() ? "" : r.body.data()));
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                                    static_cast<curl_off_t>(r.body.size())));
      } else if (r.method != "GET") {
        CURL_CHECK(curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r.method.c_str()));
      }
      response.result = curl_easy_perform(easy);
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      if (response.result != CURLE_OK) {
        response.curl_error = curl_easy_strerror(response.result);
        if (error_buffer[0] != '\0') response.curl_error += std::string(" (") + error_buffer + ")";
      }
    } catch (...) {
      curl_slist_free_all(headers);
      curl_easy_cleanup(easy);
      throw;
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    return response;
  }

  // Retries as the header says; returns a response with status < 400 (or 404 when allow_404).
  Response perform(const Request& r, bool allow_404 = false) const {
    for (int attempt = 1;; ++attempt) {
      Response response = attempt_once(r);
      if (response.over_limit) {
        throw Error(ErrorKind::kIo,
                    "s3 " + r.method + ": object is over the limit of " +
                        std::to_string(r.max_bytes) + " bytes",
                    at_url(r.url));
      }
      const std::string code =
          response.status >= 400 ? xml_value(response.body, "Code") : std::string();
      if (response.result == CURLE_OK && response.status < 400) return response;
      if (response.result == CURLE_OK && response.status == 404 && allow_404) return response;
      if (attempt < options.max_attempts && retryable(response.status, code, response.result)) {
        sleep_seconds(backoff_for(options, attempt - 1, response.retry_after));
        continue;
      }
      if (response.result != CURLE_OK) {
        throw Error(ErrorKind::kNetwork,
                    "s3 " + r.method + ": " + response.curl_error + " after " +
                        std::to_string(attempt) + " attempts",
                    at_url(r.url));
      }
      throw_status(r.method, r.url, response.status, response.body, attempt);
    }
  }

  Request request(const std::string& method, const std::string& url) const {
    Request r;
    r.method = method;
    r.url = url;
    r.where = parse_s3_url(url);
    return r;
  }

  void put_multipart(const std::string& url, size_t total,
                     const std::function<std::string_view(size_t offset, size_t n)>& part) const {
    Request start = request("POST", url);
    start.query["uploads"] = "";
    const std::string upload_id = xml_value(perform(start).body, "UploadId");
    if (upload_id.empty()) {
      throw Error(ErrorKind::kIo, "s3 multipart upload: no UploadId in the answer", at_url(url));
    }
    try {
      std::string complete = "<CompleteMultipartUpload>";
      int number = 1;
      for (size_t offset = 0; offset < total; offset += options.part_bytes, ++number) {
        Request put = request("PUT", url);
        put.query["partNumber"] = std::to_string(number);
        put.query["uploadId"] = upload_id;
        put.body = part(offset, std::min(options.part_bytes, total - offset));
        const Response response = perform(put);
        complete += "<Part><PartNumber>" + std::to_string(number) + "</PartNumber><ETag>" +
                    response.etag + "</ETag></Part>";
      }
      complete += "</CompleteMultipartUpload>";
      Request finish = request("POST", url);
      finish.query["uploadId"] = upload_id;
      finish.body = complete;
      finish.content_type = "application/xml";
      const Response done = perform(finish);
      // S3 may answer 200 with an error document when completion fails late.
      if (done.body.find("<Error>") != std::string::npos) {
        throw_status("POST", url, 500, done.body, 1);
      }
    } catch (...) {
      Request abort = request("DELETE", url);
      abort.query["uploadId"] = upload_id;
      try {
        perform(abort, true);
      } catch (const Error&) {
        // The upload stays incomplete and invisible; the store's lifecycle rules reclaim it.
      }
      throw;
    }
  }
};

// A streamed GET that resumes where it stopped: each failure with retries left reopens the object
// with "Range: bytes=OFFSET-".
class S3Source final : public ByteSource {
 public:
  S3Source(const S3Core& client, std::string url, const SourceOptions& options)
      : client_(client), name_(std::move(url)), options_(options) {
    parse_s3_url(name_);
  }

  size_t read(void* buf, size_t n) override {
    for (int attempt = 1;; ++attempt) {
      const SteadyClock::time_point start = SteadyClock::now();
      try {
        if (!inner_) open_inner();
        const size_t got = inner_->read(buf, n);
        waited_ += seconds_since(start);
        offset_ += static_cast<int64_t>(got);
        check_average();
        return got;
      } catch (const Error& e) {
        waited_ += seconds_since(start);
        if (options_.cancelled && options_.cancelled()) throw;
        if (e.context().key == kDeadlineKey) throw_deadline();
        const std::string code = xml_value(failure_.body, "Code");
        const bool pace = !e.context().key.empty();  // deadline or minimum rate: not retried
        const bool refused = failure_.status >= 400;
        const bool again = !pace && attempt < client_.options.max_attempts &&
                           (!refused || retryable(failure_.status, code, CURLE_OK));
        if (again) {
          const std::string retry_after = failure_.retry_after;
          inner_.reset();
          const double pause = backoff_for(client_.options, attempt - 1, retry_after);
          sleep_seconds(pause);
          waited_ += pause;
          check_average();
          continue;
        }
        if (refused) throw_status("GET", name_, failure_.status, failure_.body, attempt);
        ErrorContext context = e.context();
        context.url = name_;
        context.offset = offset_;
        throw Error(e.kind(),
                    "s3 GET: " + e.message() +
                        (attempt > 1 ? " after " + std::to_string(attempt) + " attempts" : ""),
                    context);
      }
    }
  }
  const std::string& name() const override { return name_; }
  int64_t offset() const override { return offset_; }

 private:
  static constexpr const char* kDeadlineKey = "data.stream.deadline_seconds";

  // The deadline counts every attempt's wait (and the pauses between them) together.
  [[noreturn]] void throw_deadline() const {
    ErrorContext context = at_url(name_, offset_);
    context.key = kDeadlineKey;
    std::ostringstream what;
    what << "s3 GET: transfer deadline of " << options_.deadline_seconds << " s passed after "
         << offset_ << " bytes";
    throw Error(ErrorKind::kNetwork, what.str(), context);
  }

  // The minimum average rate over every attempt and pause: a store that keeps failing or
  // trickling, each attempt short enough to pass on its own, still fails the stream.
  void check_average() const {
    const double floor = options_.min_average_bytes_per_second;
    if (floor <= 0 || waited_ <= options_.min_average_grace_seconds) return;
    if (static_cast<double>(offset_) >= floor * waited_) return;
    ErrorContext context = at_url(name_, offset_);
    context.key = "data.stream.min_average_bytes_per_second";
    std::ostringstream what;
    what << "s3 GET: average rate " << static_cast<int64_t>(static_cast<double>(offset_) / waited_)
         << " bytes/s over " << waited_ << " s of attempts is below the minimum of "
         << static_cast<int64_t>(floor) << " bytes/s";
    throw Error(ErrorKind::kNetwork, what.str(), context);
  }

  void open_inner() {
    SourceOptions attempt = options_;
    if (options_.deadline_seconds > 0) {
      attempt.deadline_seconds = options_.deadline_seconds - waited_;
      if (attempt.deadline_seconds <= 0) throw_deadline();
    }
    failure_ = HttpFailure{};
    Request r = client_.request("GET", name_);
    const S3Core::Wire wire = client_.sign(r, sha256_hex(""));
    std::vector<std::string> headers = wire.headers;
    if (offset_ > 0) headers.push_back("Range: bytes=" + std::to_string(offset_) + "-");
    inner_ = open_http(wire.url, headers, attempt, &failure_);
  }

  const S3Core& client_;
  std::string name_;
  SourceOptions options_;
  HttpFailure failure_;
  std::unique_ptr<ByteSource> inner_;
  int64_t offset_ = 0;
  double waited_ = 0;  // seconds inside read(), every attempt and pause included
};

}  // namespace

struct S3Client::Impl : S3Core {};

S3Client::S3Client(S3Options options) : impl_(std::make_unique<Impl>()) {
  curl_init_once();
  impl_->options = std::move(options);
  if (impl_->options.cache_dir.empty()) {
    impl_->options.cache_dir = env("FLAM_S3_CACHE");
    if (impl_->options.cache_dir.empty() && !env("XDG_CACHE_HOME").empty()) {
      impl_->options.cache_dir = env("XDG_CACHE_HOME") + "/flamboyance/s3";
    }
    if (impl_->options.cache_dir.empty() && !env("HOME").empty()) {
      impl_->options.cache_dir = env("HOME") + "/.cache/flamboyance/s3";
    }
    if (impl_->options.cache_dir.empty()) impl_->options.cache_dir = "/tmp/flamboyance-s3";
  }
  Credentials& c = impl_->credentials;
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (c.access_key.empty() || c.secret_key.empty()) {
    std::string file = env("AWS_SHARED_CREDENTIALS_FILE");
    if (file.empty() && !env("HOME").empty()) file = env("HOME") + "/.aws/credentials";
    const std::string profile = env("AWS_PROFILE").empty() ? "default" : env("AWS_PROFILE");
    c = credentials_from_file(file, profile);
    if (c.access_key.empty() || c.secret_key.empty()) {
      throw Error(ErrorKind::kConfig,
                  "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
                  "AWS_PROFILE with a profile in " +
                      (file.empty() ? std::string("~/.aws/credentials") : file) + " (profile '" +
                      profile + "' has none)");
    }
  }
  impl_->region = env("AWS_REGION");
  if (impl_->region.empty()) impl_->region = env("AWS_DEFAULT_REGION");
  if (impl_->region.empty()) impl_->region = "us-east-1";
  std::string endpoint = env("AWS_ENDPOINT_URL_S3");
  if (endpoint.empty()) endpoint = env("AWS_ENDPOINT_URL");
  const std::string style = env("AWS_S3_ADDRESSING_STYLE");
  if (!style.empty() && style != "path" && style != "virtual") {
    throw Error(ErrorKind::kConfig,
                "AWS_S3_ADDRESSING_STYLE must be 'path' or 'virtual', not '" + style + "'");
  }
  impl_->virtual_hosted = style.empty() ? endpoint.empty() : style == "virtual";
  if (endpoint.empty()) endpoint = "https://s3." + impl_->region + ".amazonaws.com";
  const size_t sep = endpoint.find("://");
  if (sep == std::string::npos) {
    throw Error(ErrorKind::kConfig, "AWS_ENDPOINT_URL must be http(s)://HOST[:PORT][/PATH]",
                at_url(endpoint));
  }
  impl_->scheme = endpoint.substr(0, sep);
  if (impl_->scheme != "http" && impl_->scheme != "https") {
    throw Error(ErrorKind::kConfig, "AWS_ENDPOINT_URL must be http(s)://HOST[:PORT][/PATH]",
                at_url(endpoint));
  }
  std::string rest = endpoint.substr(sep + 3);
  const size_t slash = rest.find('/');
  impl_->host = rest.substr(0, slash);
  if (slash != std::string::npos) impl_->base_path = rest.substr(slash);
  while (!impl_->base_path.empty() && impl_->base_path.back() == '/') impl_->base_path.pop_back();
}

S3Client::~S3Client() = default;

std::unique_ptr<ByteSource> S3Client::open(const std::string& url) const {
  return open(url, impl_->options.stream);
}

std::unique_ptr<ByteSource> S3Client::open(const std::string& url,
                                           const SourceOptions& stream) const {
  return std::make_unique<S3Source>(*impl_, url, stream);
}

std::string S3Client::get(const std::string& url) const {
  Request r = impl_->request("GET", url);
  r.max_bytes = impl_->options.max_get_bytes;
  return impl_->perform(r).body;
}

std::optional<int64_t> S3Client::head(const std::string& url) const {
  const std::optional<S3Object> object = stat(url);
  if (!object) return std::nullopt;
  return object->size;
}

std::optional<S3Object> S3Client::stat(const std::string& url) const {
  const Response response = impl_->perform(impl_->request("HEAD", url), true);
  if (response.status == 404) return std::nullopt;
  return S3Object{url, std::max<int64_t>(0, response.content_length), response.etag};
}

void S3Client::download(const std::string& url, const std::string& path) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec)
    throw Error(ErrorKind::kIo, "cannot create " + parent.string() + ": " + ec.message(),
                at_file(path));
  std::ostringstream tmp_name;
  tmp_name << path << ".part." << ::getpid() << "." << std::this_thread::get_id();
  const std::string tmp = tmp_name.str();
  std::unique_ptr<ByteSource> in = open(url);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorKind::kIo, "cannot write a download of " + url, at_file(tmp));
    std::vector<char> buf(1 << 20);
    try {
      while (size_t n = in->read(buf.data(), buf.size())) {
        if (!out.write(buf.data(), static_cast<std::streamsize>(n))) {
          throw Error(ErrorKind::kIo, "write failed during a download of " + url, at_file(tmp));
        }
      }
      out.close();
      if (!out)
        throw Error(ErrorKind::kIo, "write failed during a download of " + url, at_file(tmp));
    } catch (...) {
      fs::remove(tmp, ec);
      throw;
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(ErrorKind::kIo, "cannot rename a download of " + url + " into place",
                at_file(path));
  }
}

namespace {

// CACHE/bucket/key for an object, after checking that every segment of the key can be a local
// path segment.
std::string cache_path(const std::string& root, const std::string& url) {
  const S3Url where = parse_s3_url(url);
  size_t start = 0;
  while (start <= where.key.size()) {
    size_t slash = where.key.find('/', start);
    if (slash == std::string::npos) slash = where.key.size();
    const std::string segment = where.key.substr(start, slash - start);
    if (segment.empty() || segment == "." || segment == "..") {
      throw Error(ErrorKind::kData,
                  "s3 key cannot be stored as a local file (an empty, '.' or '..' segment)",
                  at_url(url));
    }
    start = slash + 1;
  }
  return root + "/" + where.bucket + "/" + where.key;
}

}  // namespace

std::string S3Client::local_copy(const std::string& url) const {
  const std::string& root = impl_->options.cache_dir;
  const S3Url where = parse_s3_url(url);
  std::vector<S3Object> objects;
  std::string result;
  if (where.key.empty() || where.key.back() == '/') {
    objects = list(url);
    if (objects.empty()) throw Error(ErrorKind::kIo, "s3: no object under the prefix", at_url(url));
    result = root + "/" + where.bucket + "/" + where.key;
  } else {
    result = cache_path(root, url);
    std::optional<S3Object> object = stat(url);
    if (!object) throw Error(ErrorKind::kIo, "s3: no such object (NoSuchKey)", at_url(url));
    objects.push_back(std::move(*object));
  }
  for (const S3Object& object : objects) {
    const std::string path = cache_path(root, object.url);
    const std::string tag_path = cache_path(root + "/.etag", object.url);
    std::error_code ec;
    const auto have = std::filesystem::file_size(path, ec);
    if (!ec && static_cast<int64_t>(have) == object.size && !object.etag.empty()) {
      std::ifstream tag(tag_path);
      std::string etag;
      if (std::getline(tag, etag) && etag == object.etag) continue;
    }
    download(object.url, path);
    const auto got = std::filesystem::file_size(path, ec);
    if (ec || static_cast<int64_t>(got) != object.size) {
      throw Error(ErrorKind::kIo,
                  "s3: the download holds " + std::to_string(ec ? 0 : got) + " bytes, not the " +
                      std::to_string(object.size) + " the store listed (changed meanwhile?)",
                  at_url(object.url));
    }
    std::filesystem::create_directories(std::filesystem::path(tag_path).parent_path(), ec);
    std::ostringstream tmp;
    tmp << tag_path << ".part." << ::getpid() << "." << std::this_thread::get_id();
    std::ofstream(tmp.str(), std::ios::trunc) << object.etag << "\n";
    std::filesystem::rename(tmp.str(), tag_path, ec);
  }
  return result;
}

void S3Client::put(const std::string& url, std::string_view body) const {
  if (body.size() <= impl_->options.part_bytes) {
    Request r = impl_->request("PUT", url);
    r.body = body;
    impl_->perform(r);
    return;
  }
  impl_->put_multipart(url, body.size(),
                       [&](size_t offset, size_t n) { return body.substr(offset, n); });
}

void S3Client::put_file(const std::string& url, const std::string& path) const {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::kIo, "cannot open for upload", at_file(path));
  in.seekg(0, std::ios::end);
  const auto total = static_cast<size_t>(in.tellg());
  in.seekg(0);
  std::string buffer;
  auto part = [&](size_t offset, size_t n) -> std::string_view {
    buffer.resize(n);
    in.seekg(static_cast<std::streamoff>(offset));
    if (!in.read(buffer.data(), static_cast<std::streamsize>(n))) {
      throw Error(ErrorKind::kIo, "read failed during upload to " + url, at_file(path, -1));
    }
    return buffer;
  };
  if (total <= impl_->options.part_bytes) {
    Request r = impl_->request("PUT", url);
    r.body = part(0, total);
    impl_->perform(r);
    return;
  }
  impl_->put_multipart(url, total, part);
}

std::vector<S3Object> S3Client::list(const std::string& url_prefix) const {
  const S3Url where = parse_s3_url(url_prefix);
  std::vector<S3Object> out;
  std::string token;
  while (true) {
    Request r = impl_->request("GET", "s3://" + where.bucket);
    r.url = url_prefix;
    r.query["list-type"] = "2";
    r.query["prefix"] = where.key;
    r.query["max-keys"] = std::to_string(impl_->options.list_page_keys);
    if (!token.empty()) r.query["continuation-token"] = token;
    const std::string body = impl_->perform(r).body;
    size_t at = 0;
    while (true) {
      const std::string contents = xml_value(body, "Contents", &at);
      if (contents.empty()) break;
      S3Object object;
      object.url = "s3://" + where.bucket + "/" + xml_value(contents, "Key");
      object.size = std::strtoll(xml_value(contents, "Size").c_str(), nullptr, 10);
      object.etag = xml_value(contents, "ETag");
      out.push_back(std::move(object));
    }
    token = xml_value(body, "NextContinuationToken");
    if (xml_value(body, "IsTruncated") != "true" || token.empty()) break;
  }
  std::sort(out.begin(), out.end(),
            [](const S3Object& a, const S3Object& b) { return a.url < b.url; });
  return out;
}

void S3Client::remove(const std::string& url) const {
  impl_->perform(impl_->request("DELETE", url), true);
}

const S3Client& default_s3_client() {
  static std::once_flag once;
  static std::unique_ptr<S3Client> client;
  std::call_once(once, [] { client = std::make_unique<S3Client>(); });
  return *client;
}

std::string local_path_for(const std::string& name) {
  return is_s3_url(name) ? default_s3_client().local_copy(name) : name;
}

std::unique_ptr<ByteSource> open_s3_source(const std::string& url, const SourceOptions& options) {
  return default_s3_client().open(url, options);
}

}  // namespace flam::pipeline
