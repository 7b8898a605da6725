//! Messages as SRS 7 writes them, encoded here by hand from SRS's source rather than by our AMF0
//! encoder, for tests that check our side against SRS's bytes (shared with the node's tests).

/// The bytes of SRS 7's RTMP 302 (`SrsRtmpServer::redirect`), encoded here by hand rather than
/// by our AMF0 encoder: onStatus, transaction 0, a null command object, then the info object
/// {level, code, description, ex: {code: 302, redirect: tcUrl, redirect2: url}}.
pub fn redirect_body(tc_url: &str, url: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn prop_str(out: &mut Vec<u8>, k: &str, v: &str) {
        string(out, k);
        out.push(0x02);
        string(out, v);
    }
    let mut b = vec![0x02];
    string(&mut b, "onStatus");
    b.push(0x00);
    b.extend_from_slice(&0f64.to_be_bytes());
    b.push(0x05);
    b.push(0x03);
    prop_str(&mut b, "level", "error");
    prop_str(&mut b, "code", "NetConnection.Connect.Rejected");
    prop_str(&mut b, "description", "RTMP 302 Redirect");
    string(&mut b, "ex");
    b.push(0x03);
    string(&mut b, "code");
    b.push(0x00);
    b.extend_from_slice(&302f64.to_be_bytes());
    prop_str(&mut b, "redirect", tc_url);
    prop_str(&mut b, "redirect2", url);
    b.extend_from_slice(&[0, 0, 0x09]);
    b.extend_from_slice(&[0, 0, 0x09]);
    b
}
