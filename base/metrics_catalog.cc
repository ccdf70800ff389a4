#include "base/metrics_catalog.h"

#include <cstdio>
#include <string>
#include <vector>

namespace strongroom::metrics {
namespace {

template <size_t N>
std::vector<std::string> Values(const std::string_view (&list)[N]) {
  return std::vector<std::string>(std::begin(list), std::end(list));
}

Catalog* MakeCatalog(Registry& r) {
  const std::vector<std::string> status_classes = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
  return new Catalog{
      r.AddHistogram("core.handle_request",
                     "Time to answer a request (ms), by route class and HTTP status code",
                     LatencyBucketsMs(),
                     {{"route", Values(kRouteClasses)}, {"code", Values(kStatusCodes)}}),
      r.AddCounter("core.response_status_code", "Responses sent, by HTTP status code and class",
                   {{"code", Values(kStatusCodes)}, {"type", status_classes}}),
      r.AddHistogram("audit.log_request", "Time to record a request in the audit log (ms)",
                     LatencyBucketsMs())
          .Only(),
      r.AddHistogram("audit.log_response", "Time to record a response in the audit log (ms)",
                     LatencyBucketsMs())
          .Only(),
      r.AddCounter("audit.log_request_failure",
                   "Requests refused because no audit device recorded them")
          .Only(),
      r.AddCounter("audit.log_response_failure",
                   "Responses withheld because no audit device recorded them")
          .Only(),
      r.AddCounter("audit.records", "Audit records made durable in audit files").Only(),
      r.AddCounter("audit.bytes", "Bytes of audit records made durable in audit files").Only(),
      r.AddHistogram("audit.fsync", "Time of one fdatasync of an audit file batch (ms)",
                     LatencyBucketsMs())
          .Only(),
      r.AddCounter("audit.sink_failure",
                   "Audit file batches that failed (write, sync or MAC); their records were "
                   "refused")
          .Only(),
      r.AddHistogram(
          "hsm.operation",
          "Time of one PKCS#11 operation in the token (ms), by operation and mechanism",
          LatencyBucketsMs(),
          {{"operation", Values(kHsmOperations)}, {"mechanism", Values(kHsmMechanisms)}}),
      r.AddGauge("hsm.sessions.in_use", "PKCS#11 sessions lent out of the pool").Only(),
      r.AddGauge("hsm.sessions.idle", "PKCS#11 sessions idle in the pool").Only(),
      r.AddCounter("hsm.sessions.opened", "PKCS#11 sessions opened (the pool had none idle)")
          .Only(),
  };
}

Registry& TheRegistry() {
  static Registry* registry = new Registry();  // never destroyed: threads may outlive main
  return *registry;
}

}  // namespace

Registry& DefaultRegistry() {
  (void)Get();  // a scrape before the first update still shows the whole catalog
  return TheRegistry();
}

Catalog& Get() {
  static Catalog* catalog = MakeCatalog(TheRegistry());
  return *catalog;
}

std::string_view StatusClass(unsigned status) {
  switch (status / 100) {
    case 1:
      return "1xx";
    case 2:
      return "2xx";
    case 3:
      return "3xx";
    case 4:
      return "4xx";
    case 5:
      return "5xx";
    default:
      return "other";
  }
}

size_t StatusClassIndex(unsigned status) {
  const unsigned hundreds = status / 100;
  return hundreds >= 1 && hundreds <= 5 ? hundreds - 1 : 5;
}

size_t StatusIndex(unsigned status) {
  char buf[8];
  const int n = std::snprintf(buf, sizeof buf, "%u", status);
  if (n <= 0 || n >= static_cast<int>(sizeof buf)) return IndexIn(kStatusCodes, "other");
  return IndexIn(kStatusCodes, std::string_view(buf, static_cast<size_t>(n)));
}

}  // namespace strongroom::metrics
