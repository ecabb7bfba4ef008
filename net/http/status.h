// net/http/status.h — reason phrases of the HTTP status codes the runtime sends.
#pragma once

#include <string_view>

namespace mnv::http {

// "OK" for 200, "Not Found" for 404, ...; "Unknown" for a code it does not list.
std::string_view reason_phrase(int status);

}  // namespace mnv::http
