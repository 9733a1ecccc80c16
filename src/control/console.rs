//! The embedded web console under `/console/`: static files compiled into the binary (the page,
//! its script and style, and the vendored mpegts.js it previews streams with).

use super::Response;

const INDEX_HTML: &[u8] = include_bytes!("../../web/console/index.html");
const APP_JS: &[u8] = include_bytes!("../../web/console/app.js");
const STYLE_CSS: &[u8] = include_bytes!("../../web/console/style.css");
const MPEGTS_JS: &[u8] = include_bytes!("../../web/vendor/mpegts.js");
const MPEGTS_LICENSE: &[u8] = include_bytes!("../../web/vendor/LICENSE.mpegts.txt");

/// The console file at `file` (the path after `/console/`), or a 404.
pub fn asset(file: &str) -> Response {
    match file {
        "" | "index.html" => Response::asset("text/html; charset=utf-8", INDEX_HTML),
        "app.js" => Response::asset("text/javascript; charset=utf-8", APP_JS),
        "style.css" => Response::asset("text/css; charset=utf-8", STYLE_CSS),
        "vendor/mpegts.js" => Response::asset("text/javascript; charset=utf-8", MPEGTS_JS),
        "vendor/LICENSE.mpegts.txt" => Response::asset("text/plain; charset=utf-8", MPEGTS_LICENSE),
        _ => Response::error("404 Not Found", "no such console file"),
    }
}
