//! The generated configs against SRS's own directive whitelist (../shared/reference/srs.md §2.1,
//! §3.1–3.8): SRS refuses to start on any directive outside it.

use super::*;

/// A directive: name, arguments, children.
#[derive(Debug)]
struct Directive {
    name: String,
    args: Vec<String>,
    children: Vec<Directive>,
}

/// SRS's nginx-like grammar: `name args...;` and `name args... { ... }`, `#` comments, quotes.
fn parse(text: &str) -> Result<Vec<Directive>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {}
            ';' | '{' | '}' => tokens.push(c.to_string()),
            '"' | '\'' => {
                let mut word = String::from("\u{0}");
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(x) => word.push(x),
                        None => return Err("unterminated quote".into()),
                    }
                }
                tokens.push(word);
            }
            c => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, ';' | '{' | '}') {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                tokens.push(word);
            }
        }
    }
    let mut pos = 0;
    let list = block(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err("unbalanced '}'".into());
    }
    Ok(list)
}

fn block(tokens: &[String], pos: &mut usize) -> Result<Vec<Directive>, String> {
    let mut out = Vec::new();
    while *pos < tokens.len() && tokens[*pos] != "}" {
        let name = tokens[*pos].clone();
        *pos += 1;
        let mut args = Vec::new();
        loop {
            let t = tokens.get(*pos).ok_or(format!("{name}: missing ';'"))?;
            *pos += 1;
            match t.as_str() {
                ";" => {
                    out.push(Directive { name, args, children: Vec::new() });
                    break;
                }
                "{" => {
                    let children = block(tokens, pos)?;
                    if tokens.get(*pos).map(String::as_str) != Some("}") {
                        return Err(format!("{name}: missing '}}'"));
                    }
                    *pos += 1;
                    out.push(Directive { name, args, children });
                    break;
                }
                _ => args.push(t.trim_start_matches('\u{0}').to_string()),
            }
        }
    }
    Ok(out)
}

const ROOT: &str = "listen pid chunk_size ff_log_dir ff_log_level srs_log_tank srs_log_level srs_log_level_v2 \
    srs_log_file max_connections daemon heartbeat tencentcloud_apm tencentcloud_cls http_api stats vhost pithy_print_ms \
    http_server stream_caster rtc_server srt_server utc_time work_dir asprocess server_id grace_final_wait \
    force_grace_quit grace_start_wait empty_ip_ok disable_daemon_for_docker inotify_auto_reload auto_reload_for_docker \
    tcmalloc_release_rate query_latest_version first_wait_for_qlv threads circuit_breaker is_full in_docker exporter";
const VHOST: &str = "enabled chunk_size min_latency tcp_nodelay dvr ingest hls http_hooks refer forward transcode \
    bandcheck play publish cluster security http_remux dash http_static hds exec in_ack_size out_ack_size rtc srt";

/// The keys SRS accepts inside a block, by block path.
fn allowed(path: &str) -> Option<&'static str> {
    Some(match path {
        "" => ROOT,
        "vhost" => VHOST,
        "http_api" => "enabled listen crossdomain raw_api auth https",
        "http_server" => "enabled listen dir crossdomain https",
        "heartbeat" => "enabled interval url device_id summaries ports",
        "vhost.cluster" => {
            "mode origin token_traverse vhost debug_srs_upnode protocol follow_client origin_cluster coworkers"
        }
        "vhost.http_remux" => "enabled mount fast_cache drop_if_not_match has_audio has_video guess_has_av",
        "vhost.hls" => {
            "enabled hls_fragment hls_td_ratio hls_aof_ratio hls_window hls_on_error hls_path hls_m3u8_file \
             hls_ts_file hls_entry_prefix hls_acodec hls_vcodec hls_cleanup hls_dispose hls_wait_keyframe hls_ts_floor \
             hls_nb_notify hls_ctx hls_ts_ctx hls_keys hls_fragments_per_key hls_key_file hls_key_file_path hls_key_url \
             hls_dts_directly"
        }
        "vhost.http_hooks" => {
            "enabled on_connect on_close on_publish on_unpublish on_play on_stop on_dvr on_hls on_hls_notify"
        }
        "vhost.forward" => "enabled destination backend",
        _ => return None,
    })
}

/// Every directive is one SRS knows where it stands, and every `enabled` is the literal `on`.
fn validate(list: &[Directive], path: &str) -> Result<(), String> {
    let keys = allowed(path).ok_or(format!("no whitelist for block {path:?}"))?;
    for d in list {
        if !keys.split_whitespace().any(|k| k == d.name) {
            let full = if path.is_empty() { d.name.clone() } else { format!("{path}.{}", d.name) };
            return Err(format!("illegal directive {full}"));
        }
        if d.name == "enabled" && d.args != ["on"] {
            return Err(format!("{path}.enabled is {:?}: only the literal `on` turns it on", d.args));
        }
        if !d.children.is_empty() {
            let child = if path.is_empty() { d.name.clone() } else { format!("{path}.{}", d.name) };
            validate(&d.children, &child)?;
        }
    }
    Ok(())
}

fn find<'a>(list: &'a [Directive], path: &[&str]) -> Option<&'a Directive> {
    let d = list.iter().find(|d| d.name == path[0])?;
    if path.len() == 1 { Some(d) } else { find(&d.children, &path[1..]) }
}

fn args(role: SrsRole, origins: &[&str]) -> SrsConfigArgs {
    SrsConfigArgs {
        role,
        index: "http://10.0.0.9:8000/".into(),
        name: "edge-eu-1".into(),
        region: Some("eu".into()),
        origins: origins.iter().map(|o| o.to_string()).collect(),
        rtmp_port: 1935,
        http_port: 8080,
        api_port: 1985,
        hook_secret: Some("s3cret".into()),
        register_secret: None,
        heartbeat_s: 5,
        hls_fragment_s: 2,
        output: None,
    }
}

#[test]
fn origin_and_edge_configs_use_only_directives_srs_knows() {
    for (role, origins) in [(SrsRole::Origin, vec![]), (SrsRole::Edge, vec!["10.0.0.5:1935", "10.0.1.5:1935"])] {
        let text = render(&args(role, &origins)).unwrap();
        let conf = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        validate(&conf, "").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let hb = find(&conf, &["heartbeat", "url"]).unwrap();
        let role_name = if role == SrsRole::Edge { "edge" } else { "origin" };
        assert_eq!(hb.args, [format!("http://10.0.0.9:8000/api/v1/srs/register?role={role_name}&region=eu")]);
        assert_eq!(find(&conf, &["heartbeat", "ports"]).unwrap().args, ["on"], "the index needs the ports");
        let hook = find(&conf, &["vhost", "http_hooks", "on_play"]).unwrap();
        assert_eq!(hook.args, ["http://10.0.0.9:8000/api/v1/hooks?secret=s3cret"]);
        assert_eq!(find(&conf, &["vhost", "http_remux", "mount"]).unwrap().args, ["[vhost]/[app]/[stream].flv"]);
        match role {
            SrsRole::Edge => {
                assert_eq!(find(&conf, &["vhost", "cluster", "mode"]).unwrap().args, ["remote"]);
                assert_eq!(find(&conf, &["vhost", "cluster", "origin"]).unwrap().args, origins);
            }
            SrsRole::Origin => {
                // An origin cluster whose coworker is the index: SRS asks its /api/v1/clusters.
                assert_eq!(find(&conf, &["vhost", "cluster", "mode"]).unwrap().args, ["local"]);
                assert_eq!(find(&conf, &["vhost", "cluster", "origin_cluster"]).unwrap().args, ["on"]);
                let coworker = find(&conf, &["vhost", "cluster", "coworkers"]).unwrap().args.clone();
                let index = reqwest::Url::parse(&args(role, &origins).index).unwrap();
                assert_eq!(
                    coworker,
                    [format!("{}:{}", index.host_str().unwrap(), index.port_or_known_default().unwrap())]
                );
            }
        }
    }
}

#[test]
fn the_validator_refuses_the_configuration_many_guides_show() {
    let seed = "vhost __defaultVhost__ { cluster { enabled true; nodes { edge1 10.0.0.2:1935; } } }";
    assert!(validate(&parse(seed).unwrap(), "").unwrap_err().contains("illegal directive vhost.cluster.enabled"));
    let seed = "edge { enabled false; }";
    assert!(validate(&parse(seed).unwrap(), "").unwrap_err().contains("illegal directive edge"));
    let seed = "vhost v { http_remux { enabled true; } }";
    assert!(validate(&parse(seed).unwrap(), "").unwrap_err().contains("only the literal `on`"));
    let seed = "vhost v { http_remux { enabled on; remux rtmp; } }";
    assert!(validate(&parse(seed).unwrap(), "").unwrap_err().contains("http_remux.remux"));
}

#[test]
fn bad_arguments_are_refused_with_the_flag_named() {
    let e = render(&args(SrsRole::Edge, &[])).unwrap_err().to_string();
    assert!(e.contains("--origin"), "{e}");
    let mut a = args(SrsRole::Origin, &[]);
    a.name = "two words".into();
    assert!(render(&a).unwrap_err().to_string().contains("--name"));
    a.name = "o1".into();
    a.index = "ftp://x".into();
    assert!(render(&a).unwrap_err().to_string().contains("--index"));
}

#[test]
fn the_registration_secret_goes_in_the_heartbeat_url() {
    let a = SrsConfigArgs {
        register_secret: Some("register-secret-0123".into()),
        ..args(SrsRole::Edge, &["10.0.0.5:1935"])
    };
    let conf = parse(&render(&a).unwrap()).unwrap();
    let hb = find(&conf, &["heartbeat", "url"]).unwrap();
    assert_eq!(hb.args, ["http://10.0.0.9:8000/api/v1/srs/register?role=edge&region=eu&secret=register-secret-0123"]);
    let bad = SrsConfigArgs { register_secret: Some("has space".into()), ..args(SrsRole::Edge, &["10.0.0.5:1935"]) };
    assert!(render(&bad).is_err(), "a secret that is not URL-safe is refused");
}
