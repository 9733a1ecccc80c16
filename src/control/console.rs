//! The embedded web console under `/console/`: static files compiled into the binary (the page,
//! its script and style, and the vendored players it previews streams with: mpegts.js for
//! HTTP-FLV, hls.js for LL-HLS). `vendor/hls.min.js` is also there for pages elsewhere that play
//! this server's HLS and have no other copy.

use super::Response;

const INDEX_HTML: &[u8] = include_bytes!("../../web/console/index.html");
const APP_JS: &[u8] = include_bytes!("../../web/console/app.js");
const STYLE_CSS: &[u8] = include_bytes!("../../web/console/style.css");
const MPEGTS_JS: &[u8] = include_bytes!("../../web/vendor/mpegts.js");
const MPEGTS_LICENSE: &[u8] = include_bytes!("../../web/vendor/LICENSE.mpegts.txt");
const HLS_JS: &[u8] = include_bytes!("../../web/vendor/hls.min.js");
const HLS_LICENSE: &[u8] = include_bytes!("../../web/vendor/LICENSE.hls.txt");

/// The console file at `file` (the path after `/console/`), or a 404.
pub fn asset(file: &str) -> Response {
    match file {
        "" | "index.html" => Response::asset("text/html; charset=utf-8", INDEX_HTML),
        "app.js" => Response::asset("text/javascript; charset=utf-8", APP_JS),
        "style.css" => Response::asset("text/css; charset=utf-8", STYLE_CSS),
        "vendor/mpegts.js" => Response::asset("text/javascript; charset=utf-8", MPEGTS_JS),
        "vendor/LICENSE.mpegts.txt" => Response::asset("text/plain; charset=utf-8", MPEGTS_LICENSE),
        "vendor/hls.min.js" => Response::asset("text/javascript; charset=utf-8", HLS_JS),
        "vendor/LICENSE.hls.txt" => Response::asset("text/plain; charset=utf-8", HLS_LICENSE),
        _ => Response::error("404 Not Found", "no such console file"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_both_players_and_their_licences() {
        for file in [
            "",
            "vendor/mpegts.js",
            "vendor/LICENSE.mpegts.txt",
            "vendor/hls.min.js",
            "vendor/LICENSE.hls.txt",
        ] {
            let r = asset(file);
            assert_eq!(r.status, "200 OK", "{file:?}");
            assert!(!r.body.is_empty(), "{file:?}");
        }
        assert!(asset("vendor/hls.min.js")
            .content_type
            .starts_with("text/javascript"));
        assert_eq!(asset("vendor/hls.js").status, "404 Not Found");
    }
}
