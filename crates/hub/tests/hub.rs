//! Hub behaviour: GOP-cache start, whole-GOP skips, timestamps, republish, breaker, limits.

use std::time::Duration;

use bytes::Bytes;
use sluice_hub::{Budget, Delivery, Hub, HubConfig, PublishError, Read};
use sluice_media::{Codec, Frame, Track};

fn video(dts: i64, key: bool) -> Frame {
    Frame {
        track: Track::Video,
        codec: Codec::H264,
        dts,
        cts: 0,
        keyframe: key,
        seq_header: false,
        body: Bytes::from(vec![0x17; 100]),
        data_offset: 5,
    }
}
fn seq_header() -> Frame {
    Frame {
        seq_header: true,
        keyframe: false,
        ..video(0, false)
    }
}
fn audio(dts: i64) -> Frame {
    Frame {
        track: Track::Audio,
        codec: Codec::Aac,
        dts,
        cts: 0,
        keyframe: true,
        seq_header: false,
        body: Bytes::from_static(&[0xaf, 1, 0]),
        data_offset: 2,
    }
}
const ALL: Budget = Budget {
    max_bytes: usize::MAX,
    max_frames: usize::MAX,
};

/// Publishes `n` video frames at 25 fps with a keyframe every `gop` frames, starting at `start`.
fn feed(p: &sluice_hub::Publisher, start: i64, n: i64, gop: i64) {
    for i in 0..n {
        assert!(p.push(video(start + i * 40, i % gop == 0)));
    }
}

#[tokio::test]
async fn new_viewer_starts_at_newest_keyframe_after_headers() {
    let hub = Hub::new(HubConfig::default());
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    feed(&p, 1000, 60, 25); // keyframes at frames 0, 25, 50
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out: Vec<Delivery> = Vec::new();
    assert_eq!(sub.read(&mut out, ALL), Read::Frames(11));
    assert!(out[0].frame.seq_header);
    assert!(out[1].frame.keyframe);
    assert_eq!(out[1].ts, 0, "viewer timeline starts at 0");
    assert_eq!(out.last().unwrap().ts, 9 * 40);
    out.clear();
    assert_eq!(sub.read(&mut out, ALL), Read::Empty);
    p.push(video(1000 + 60 * 40, false));
    assert_eq!(sub.read(&mut out, ALL), Read::Frames(1));
    assert_eq!(out[0].ts, 10 * 40);
}

#[tokio::test]
async fn lagging_viewer_skips_whole_gops_with_continuous_timestamps() {
    let hub = Hub::new(HubConfig {
        max_lag: Duration::from_millis(1500),
        ..HubConfig::default()
    });
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    feed(&p, 0, 10, 25);
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    sub.read(&mut out, ALL);
    let last = out.last().unwrap().ts;
    out.clear();
    // 3 s more arrive while the viewer reads nothing: it is behind by > max_lag.
    for i in 10..85 {
        p.push(video(i * 40, i % 25 == 0));
    }
    assert!(matches!(sub.read(&mut out, ALL), Read::Frames(_)));
    assert_eq!(sub.skips, 1);
    let first_media = out.iter().find(|d| !d.frame.seq_header).unwrap();
    assert!(first_media.frame.keyframe, "a skip lands on a keyframe");
    assert_eq!(first_media.frame.dts, 75 * 40, "the newest keyframe");
    assert!(
        first_media.ts > last && first_media.ts <= last + 1,
        "timeline continues across the skip"
    );
    assert!(
        out.iter().any(|d| d.frame.seq_header),
        "sequence headers resent after a skip"
    );
    assert_eq!(
        hub.get("live/a")
            .unwrap()
            .stats
            .skips
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// A viewer (max_lag 1.5 s) that read everything up to 1.2 s ago; since then 1.2 s more arrived,
/// with keyframes at 0, 1000 and 2000 ms.
async fn viewer_behind_by_1200ms() -> (
    std::sync::Arc<Hub>,
    sluice_hub::Publisher,
    sluice_hub::Subscriber,
) {
    let hub = Hub::new(HubConfig {
        max_lag: Duration::from_millis(1500),
        ..HubConfig::default()
    });
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    feed(&p, 0, 30, 25);
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    sub.read(&mut Vec::new(), ALL); // caught up: frames 25..30 read
    for i in 30..60 {
        p.push(video(i * 40, i % 25 == 0));
    }
    (hub, p, sub)
}

#[tokio::test]
async fn bytes_queued_in_the_socket_count_towards_lag() {
    let (_hub, _p, mut sub) = viewer_behind_by_1200ms().await;
    let mut out = Vec::new();
    // The ring alone says the viewer is 1.2 s behind, within max_lag, but its socket holds
    // 400 ms of data not yet taken: the next frame written reaches it 1.6 s behind live, so it
    // skips to the newest keyframe.
    assert!(matches!(
        sub.read_queued(&mut out, ALL, 400),
        Read::Frames(_)
    ));
    assert_eq!(sub.skips, 1);
    let first_media = out.iter().find(|d| !d.frame.seq_header).unwrap();
    assert_eq!(first_media.frame.dts, 50 * 40, "the newest keyframe");
}

#[tokio::test]
async fn a_small_socket_backlog_does_not_skip() {
    let (_hub, _p, mut sub) = viewer_behind_by_1200ms().await;
    let mut out = Vec::new();
    // 1.2 s behind in the ring plus 200 ms to drain the socket: 1.4 s, within max_lag.
    assert_eq!(sub.read_queued(&mut out, ALL, 200), Read::Frames(30));
    assert_eq!(sub.skips, 0);
}

#[tokio::test]
async fn budget_limits_a_batch() {
    let hub = Hub::new(HubConfig::default());
    let p = hub.publish("live/a").unwrap();
    feed(&p, 0, 20, 25);
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    assert_eq!(
        sub.read(
            &mut out,
            Budget {
                max_bytes: usize::MAX,
                max_frames: 5
            }
        ),
        Read::Frames(5)
    );
    assert_eq!(
        sub.read(
            &mut out,
            Budget {
                max_bytes: 250,
                max_frames: 100
            }
        ),
        Read::Frames(3)
    );
    assert_eq!(out.len(), 8);
    assert!(out.windows(2).all(|w| w[0].ts < w[1].ts));
}

#[tokio::test]
async fn second_publisher_refused_unless_takeover() {
    let hub = Hub::new(HubConfig::default());
    let p1 = hub.publish("live/a").unwrap();
    assert!(matches!(
        hub.publish("live/a"),
        Err(PublishError::AlreadyPublishing(_))
    ));
    assert!(p1.push(video(0, true)), "first publisher undisturbed");

    let hub = Hub::new(HubConfig {
        publish_takeover: true,
        ..HubConfig::default()
    });
    let p1 = hub.publish("live/a").unwrap();
    let p2 = hub.publish("live/a").unwrap();
    assert!(!p1.push(video(0, true)), "taken over");
    assert!(p2.push(video(0, true)));
}

#[tokio::test]
async fn republish_keeps_viewers_with_monotonic_timestamps() {
    let hub = Hub::new(HubConfig::default());
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    feed(&p, 50_000, 30, 25);
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    sub.read(&mut out, ALL);
    drop(p);
    assert_eq!(
        sub.read(&mut out, ALL),
        Read::Empty,
        "waiting for a republish"
    );
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    feed(&p, 0, 30, 25); // the new encoder restarts at 0
    sub.read(&mut out, ALL);
    let video_ts: Vec<u32> = out
        .iter()
        .filter(|d| d.frame.track == Track::Video && !d.frame.seq_header)
        .map(|d| d.ts)
        .collect();
    assert_eq!(video_ts.len(), 5 + 30);
    assert!(video_ts.windows(2).all(|w| w[0] < w[1]), "{video_ts:?}");
}

#[tokio::test]
async fn stream_ends_after_grace() {
    let hub = Hub::new(HubConfig {
        republish_grace: Duration::from_millis(50),
        ..HubConfig::default()
    });
    let p = hub.publish("live/a").unwrap();
    feed(&p, 0, 5, 25);
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    assert_eq!(sub.read(&mut out, ALL), Read::Frames(5), "the GOP cache");
    p.push(video(200, false));
    drop(p);
    hub.reap(std::time::Instant::now());
    assert_eq!(
        sub.read(&mut out, ALL),
        Read::Frames(1),
        "what was published is still delivered"
    );
    assert!(
        matches!(sub.read(&mut out, ALL), Read::Empty),
        "grace running"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    hub.reap(std::time::Instant::now());
    assert_eq!(sub.read(&mut out, ALL), Read::Ended);
    assert!(hub.get("live/a").is_none());
    assert!(hub
        .subscribe("live/a", Duration::from_millis(10))
        .await
        .is_err());
}

#[tokio::test]
async fn subscribe_waits_for_publisher() {
    let hub = Hub::new(HubConfig::default());
    let h = hub.clone();
    let t = tokio::spawn(async move {
        h.subscribe("live/late", Duration::from_secs(5))
            .await
            .is_ok()
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _p = hub.publish("live/late").unwrap();
    assert!(t.await.unwrap());
}

#[tokio::test]
async fn gop_breaker_bounds_a_keyframe_less_stream() {
    let hub = Hub::new(HubConfig {
        max_gop_duration: Duration::from_secs(2),
        ..HubConfig::default()
    });
    let p = hub.publish("live/a").unwrap();
    // One keyframe, then P-frames forever.
    feed(&p, 0, 1000, 100_000);
    let s = hub.get("live/a").unwrap();
    assert!(
        s.stats
            .breaker_trips
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let info = s.info();
    assert!(info.ring_frames < 60, "ring bounded: {}", info.ring_frames);
    // A viewer gets no undecodable P-frames; the next keyframe starts it.
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    p.push(video(40_000, false));
    p.push(video(40_040, true));
    p.push(audio(40_050));
    sub.read(&mut out, ALL);
    assert!(
        out[0].frame.keyframe,
        "{:?}",
        out.iter().map(|d| d.frame.keyframe).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn audio_only_stream_plays() {
    let hub = Hub::new(HubConfig::default());
    let p = hub.publish("live/a").unwrap();
    for i in 0..10 {
        p.push(audio(i * 23));
    }
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    p.push(audio(230));
    assert_eq!(sub.read(&mut out, ALL), Read::Frames(1));
}

#[tokio::test]
async fn enhanced_video_metadata_is_replayed_to_new_viewers() {
    let hub = Hub::new(HubConfig::default());
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    let mut body = vec![0xd4u8];
    body.extend_from_slice(b"hvc1colorInfo");
    let info = Frame {
        body: Bytes::from(body),
        keyframe: false,
        ..video(0, false)
    };
    assert!(info.is_video_info());
    p.push(info);
    feed(&p, 0, 30, 25);
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    sub.read(&mut out, ALL);
    assert!(out[0].frame.seq_header);
    assert!(
        out[1].frame.is_video_info(),
        "colorInfo follows the sequence header"
    );
    assert!(out[2].frame.keyframe);
}

#[tokio::test]
async fn with_the_publisher_gone_a_lagging_viewer_drops_what_is_left() {
    let hub = Hub::new(HubConfig {
        max_lag: Duration::from_millis(100),
        republish_grace: Duration::from_secs(10),
        ..HubConfig::default()
    });
    let p = hub.publish("live/a").unwrap();
    feed(&p, 0, 5, 25);
    let mut lagging = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut prompt = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    let mut out = Vec::new();
    assert_eq!(
        lagging.read(&mut out, ALL),
        Read::Frames(5),
        "the GOP cache"
    );
    assert_eq!(prompt.read(&mut out, ALL), Read::Frames(5), "the GOP cache");
    p.push(video(200, false));
    p.push(video(240, false));
    drop(p);
    hub.reap(std::time::Instant::now());
    // Within max_lag of their arrival, the last frames still go out while the grace runs.
    out.clear();
    assert_eq!(prompt.read(&mut out, ALL), Read::Frames(2));
    // Past it, nothing newer will come to skip to: they are dropped.
    tokio::time::sleep(Duration::from_millis(150)).await;
    out.clear();
    assert_eq!(lagging.read(&mut out, ALL), Read::Empty, "grace running");
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(lagging.skips, 1);
    // The same frames within max_lag of live while the publisher is there are not dropped.
    let p = hub.publish("live/a").unwrap();
    p.push(video(300, true));
    out.clear();
    assert!(matches!(lagging.read(&mut out, ALL), Read::Frames(_)));
    assert_eq!(lagging.skips, 1);
}

#[tokio::test]
async fn a_rewound_subscriber_starts_gops_back_and_is_not_skipped_for_the_catch_up() {
    let config = HubConfig {
        max_lag: Duration::from_millis(500),
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    let p = hub.publish("live/a").unwrap();
    p.push(seq_header());
    feed(&p, 1000, 60, 25); // keyframes at frames 0, 25, 50 (1.0, 2.0 s apart)
    let mut sub = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    assert_eq!(sub.rewind_gops(1), 1, "one GOP back is in the ring");
    let mut out: Vec<Delivery> = Vec::new();
    // Header + frames 25..60: 1.4 s behind live, past max_lag, yet nothing is skipped.
    assert_eq!(sub.read(&mut out, ALL), Read::Frames(36));
    assert!(out[1].frame.keyframe && out[1].frame.dts == 2000);
    assert_eq!(sub.skips, 0);
    // Asking for more than the ring holds goes back as far as it can.
    let mut far = hub.subscribe("live/a", Duration::ZERO).await.unwrap();
    assert_eq!(far.rewind_gops(10), 2);
    out.clear();
    assert_eq!(far.read(&mut out, ALL), Read::Frames(61));
    // After the catch-up, the lag rule applies again to new frames.
    feed(&p, 3400, 1, 25);
    out.clear();
    assert_eq!(sub.read(&mut out, ALL), Read::Frames(1));
}
