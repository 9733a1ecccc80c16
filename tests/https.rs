//! The HTTPS listener: a self-signed certificate made by `openssl`, then real clients — curl
//! over HTTP/2 (ALPN `h2`) and HTTP/1.1, ffmpeg reading LL-HLS over TLS — and the refusals
//! (FLV over TLS, a bad handshake) that must not disturb anything else.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::*;

/// A self-signed certificate for 127.0.0.1 in `dir`: (cert, key).
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Proc::spawn(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    )
    .wait(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert.display().to_string(), key.display().to_string())
}

/// `curl -sk` with extra args; returns (stdout, stderr).
fn curl(args: &[&str]) -> (String, String) {
    let mut all = vec!["-sS", "-k", "--max-time", "20"];
    all.extend_from_slice(args);
    let out = Proc::spawn("curl", &all).wait(Duration::from_secs(30));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn hls_and_the_api_over_https_with_http2_and_http11() {
    let dir = scratch("https");
    let (cert, key) = self_signed(&dir);
    let server = TestServer::with(|c| {
        c.https.listen = "127.0.0.1:0".into();
        c.https.cert_file = cert.clone();
        c.https.key_file = key.clone();
    });
    let https = server.https.expect("https listener");
    let key_ = "live/tls";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key_),
    );
    wait_for_stream(server.http, key_);
    std::thread::sleep(Duration::from_millis(2500));
    let base = format!("https://{https}/{key_}");

    // HTTP/2 by ALPN: the playlist, then a blocking reload and a part on the same connection.
    let (out, err) = curl(&[
        "--http2",
        "-w",
        "\n%{http_version} %{http_code} %{content_type}\n",
        &format!("{base}/index.m3u8"),
    ]);
    assert!(out.contains("#EXT-X-PART:"), "{out}{err}");
    assert!(
        out.trim_end()
            .ends_with("2 200 application/vnd.apple.mpegurl"),
        "not HTTP/2 200: {out}{err}"
    );
    let hint = out
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let (out, err) = curl(&[
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code} %{size_download}\n",
        &format!("{base}/{hint}"),
    ]);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(&f[..2], ["2", "200"], "{out}{err}");
    assert!(f[2].parse::<u64>().unwrap() > 100, "{out}");

    // HTTP/1.1 when the client offers only that; the API too.
    let (out, err) = curl(&[
        "--http1.1",
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}\n",
        &format!("{base}/ts/index.m3u8"),
    ]);
    assert_eq!(out.trim(), "1.1 200", "{err}");
    let (out, _) = curl(&["--http2", &format!("https://{https}/api/v1/health")]);
    assert!(out.contains("uptime"), "{out}");

    // ffmpeg reads and decodes LL-HLS over TLS.
    let url = format!("{base}/index.m3u8");
    let dec = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-tls_verify",
            "0",
            "-i",
            &url,
            "-t",
            "4",
            "-f",
            "null",
            "-",
        ],
    )
    .wait(Duration::from_secs(60));
    assert!(
        dec.status.success() && dec.stderr.is_empty(),
        "ffmpeg over https: {}",
        String::from_utf8_lossy(&dec.stderr)
    );

    // FLV is refused with a reason; junk instead of a TLS hello closes only that connection.
    let (out, _) = curl(&[
        "-w",
        "\n%{http_code}\n",
        &format!("https://{https}/{key_}.flv"),
    ]);
    assert!(out.trim_end().ends_with("501"), "{out}");
    let mut junk = TcpStream::connect(https).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    drop(junk);
    let (out, err) = curl(&["--http2", "-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert_eq!(out, "200", "{err}");
    let metrics = sluice::control::metrics::render(&server.ctx);
    assert!(
        metrics.contains(r#"sluice_connections_accepted_total{protocol="https"}"#),
        "{metrics}"
    );
}

#[test]
fn a_missing_certificate_is_a_clear_start_error() {
    let mut config = sluice::Config::default();
    config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.https.listen = "127.0.0.1:0".into();
    config.https.cert_file = "/nonexistent/cert.pem".into();
    config.https.key_file = "/nonexistent/key.pem".into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = match rt.block_on(sluice::Server::start(config)) {
        Ok(_) => panic!("started without a certificate"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("https.cert_file /nonexistent/cert.pem"),
        "{err}"
    );
}
