//! The messages against bytes worked out by hand from the `.proto` field numbers
//! (tag = field << 3 | wire type; 0 varint, 2 length-delimited).

use prost::Message;

use super::control::*;
use super::fsutil::*;
use super::gateway as gw;
use super::gateway::{
    build_result, ApiCap, BuildResult, PongResponse, Ref, ReturnRequest, RpcStatus,
};

#[test]
fn fsutil_packets() {
    // REQ for file 7: type (1, varint) = 1; ID (3, varint) = 7.
    assert_eq!(Packet::req(7).encode_to_vec(), [0x08, 0x01, 0x18, 0x07]);
    // FIN: type 3.
    assert_eq!(Packet::fin().encode_to_vec(), [0x08, 0x03]);
    // A STAT (type 0, the default, not sent) of a file "a/b", mode 0o644 (420 = 0xa4 0x03),
    // size 3: stat is field 2, length-delimited.
    let bytes = [
        0x12, 0x0a, // stat, 10 bytes
        0x0a, 0x03, b'a', b'/', b'b', // path
        0x10, 0xa4, 0x03, // mode 420
        0x28, 0x03, // size 3
    ];
    let p = Packet::decode(&bytes[..]).unwrap();
    assert_eq!(p.kind(), Some(PacketType::Stat));
    let st = p.stat.clone().unwrap();
    assert_eq!((st.path.as_str(), st.mode, st.size), ("a/b", 0o644, 3));
    assert_eq!(p.encode_to_vec(), bytes);
    // A directory's Go FileMode: ModeDir (1<<31) | 0o755 = 0x800001ed, a 5-byte varint.
    let dir = [
        0x12, 0x09, 0x0a, 0x01, b'd', 0x10, 0xed, 0x83, 0x80, 0x80, 0x08,
    ];
    let st = Packet::decode(&dir[..]).unwrap().stat.unwrap();
    assert_eq!(st.mode, mode::DIR | 0o755);
    // DATA for file 2 with "hi" (data is field 4), and the empty end-of-walk STAT.
    let data = [0x08, 0x02, 0x18, 0x02, 0x22, 0x02, b'h', b'i'];
    let p = Packet::decode(&data[..]).unwrap();
    assert_eq!(
        (p.kind(), p.id, p.data.as_slice()),
        (Some(PacketType::Data), 2, &b"hi"[..])
    );
    let end = Packet::decode(&[][..]).unwrap();
    assert_eq!((end.kind(), end.stat), (Some(PacketType::Stat), None));
    // A symlink with its target in linkname (7) and a uid (3).
    let l = [
        0x12, 0x0b, 0x0a, 0x01, b'l', 0x18, 0x01, 0x3a, 0x04, b'/', b'e', b't', b'c',
    ];
    let st = Packet::decode(&l[..]).unwrap().stat.unwrap();
    assert_eq!((st.uid, st.linkname.as_str()), (1, "/etc"));
}

#[test]
fn control_solve_request_from_a_client() {
    let mut b = vec![];
    b.extend([0x0a, 0x02, b'r', b'1']); // Ref (1)
    b.extend([0x12, 0x00]); // Definition (2), empty but present
    b.extend([0x2a, 0x01, b's']); // Session (5)
                                  // FrontendAttrs (7): one map entry {filename: Dockerfile}, 22 bytes.
    b.extend([0x3a, 0x16, 0x0a, 0x08]);
    b.extend(b"filename");
    b.extend([0x12, 0x0a]);
    b.extend(b"Dockerfile");
    b.extend([0x42, 0x00]); // Cache (8): not modelled, skipped
                            // Exporters (13, tag 0x6a): {Type: moby, Attrs: {name: x}}, 17 bytes.
    b.extend([0x6a, 0x11, 0x0a, 0x04]);
    b.extend(b"moby");
    b.extend([0x12, 0x09, 0x0a, 0x04]);
    b.extend(b"name");
    b.extend([0x12, 0x01, b'x']);
    let r = SolveRequest::decode(&b[..]).unwrap();
    assert_eq!(r.r#ref, "r1");
    assert_eq!(r.definition, Some(vec![]));
    assert_eq!(r.session, "s");
    assert_eq!(r.frontend, "");
    assert_eq!(r.frontend_attrs["filename"], "Dockerfile");
    assert_eq!(r.exporters.len(), 1);
    assert_eq!(r.exporters[0].r#type, "moby");
    assert_eq!(r.exporters[0].attrs["name"], "x");
}

#[test]
fn control_answers() {
    // SolveResponse {ExporterResponse: {a: b}}: field 1 map entry.
    let r = SolveResponse {
        exporter_response: [("a".to_string(), "b".to_string())].into(),
    };
    assert_eq!(
        r.encode_to_vec(),
        [0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01, b'b']
    );
    // StatusResponse with one vertex {digest d, name n, cached}: vertexes is field 1.
    let s = StatusResponse {
        vertexes: vec![Vertex {
            digest: "d".into(),
            name: "n".into(),
            cached: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        s.encode_to_vec(),
        [0x0a, 0x08, 0x0a, 0x01, b'd', 0x1a, 0x01, b'n', 0x20, 0x01]
    );
    // A log line (logs is field 3): vertex "d", stream 2, msg "x".
    let s = StatusResponse {
        logs: vec![VertexLog {
            vertex: "d".into(),
            stream: 2,
            msg: b"x".to_vec(),
            timestamp: Some(Timestamp {
                seconds: 1,
                nanos: 0,
            }),
        }],
        ..Default::default()
    };
    assert_eq!(
        s.encode_to_vec(),
        [0x1a, 0x0c, 0x0a, 0x01, b'd', 0x12, 0x02, 0x08, 0x01, 0x18, 0x02, 0x22, 0x01, b'x']
    );
    // A worker: ID (1) "w", platform (3) {architecture amd64, os linux}.
    let w = WorkerRecord {
        id: "w".into(),
        platforms: vec![Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut want = vec![0x0a, 0x01, b'w', 0x1a, 0x0e, 0x0a, 0x05];
    want.extend(b"amd64");
    want.extend([0x12, 0x05]);
    want.extend(b"linux");
    assert_eq!(w.encode_to_vec(), want);
    // StatusRequest {Ref: r}.
    assert_eq!(
        StatusRequest::decode(&[0x0a, 0x01, b'r'][..])
            .unwrap()
            .r#ref,
        "r"
    );
}

#[test]
fn gateway_messages() {
    // Pong with one frontend cap {ID: return, Enabled: true}.
    let p = PongResponse {
        frontend_api_caps: vec![ApiCap {
            id: "return".into(),
            enabled: true,
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut want = vec![0x0a, 0x0a, 0x0a, 0x06];
    want.extend(b"return");
    want.extend([0x10, 0x01]);
    assert_eq!(p.encode_to_vec(), want);
    // SolveResponse {result: {ref: {id: x}}}: Result is field 3, its Ref (oneof) field 3.
    let s = gw::SolveResponse {
        r#ref: String::new(),
        result: Some(BuildResult {
            result: Some(build_result::Result::Ref(Ref { id: "x".into() })),
            metadata: Default::default(),
        }),
    };
    assert_eq!(
        s.encode_to_vec(),
        [0x1a, 0x05, 0x1a, 0x03, 0x0a, 0x01, b'x']
    );
    // A client's gateway SolveRequest: Frontend (2) dockerfile.v0, FrontendOpt (3)
    // {target: t}, allowResultReturn (5).
    let mut b = vec![0x12, 0x0d];
    b.extend(b"dockerfile.v0");
    b.extend([0x1a, 0x0b, 0x0a, 0x06]);
    b.extend(b"target");
    b.extend([0x12, 0x01, b't', 0x28, 0x01]);
    let r = gw::SolveRequest::decode(&b[..]).unwrap();
    assert_eq!(r.frontend, "dockerfile.v0");
    assert_eq!(r.frontend_opt["target"], "t");
    assert!(r.allow_result_return && r.definition.is_none());
    // Return with an error {code 2, message boom} (field 2), and with a result ref.
    let e =
        ReturnRequest::decode(&[0x12, 0x08, 0x08, 0x02, 0x12, 0x04, b'b', b'o', b'o', b'm'][..])
            .unwrap();
    assert_eq!(
        e.error,
        Some(RpcStatus {
            code: 2,
            message: "boom".into()
        })
    );
    let ok = ReturnRequest::decode(&[0x0a, 0x05, 0x1a, 0x03, 0x0a, 0x01, b'x'][..]).unwrap();
    assert_eq!(
        ok.result.unwrap().result,
        Some(build_result::Result::Ref(Ref { id: "x".into() }))
    );
}

#[test]
fn grpc_framing() {
    use crate::grpc::{frame, Deframer};
    let f = frame(&Packet::req(7));
    assert_eq!(&f[..], [0, 0, 0, 0, 4, 0x08, 0x01, 0x18, 0x07]);
    let mut d = Deframer::default();
    d.push(&f[..3]);
    assert_eq!(d.next_message().unwrap(), None);
    d.push(&f[3..]);
    d.push(&frame(&Packet::fin()));
    assert_eq!(
        &d.next_message().unwrap().unwrap()[..],
        [0x08, 0x01, 0x18, 0x07]
    );
    assert_eq!(&d.next_message().unwrap().unwrap()[..], [0x08, 0x03]);
    assert_eq!(d.next_message().unwrap(), None);
    let mut c = Deframer::default();
    c.push(&[1, 0, 0, 0, 0]);
    assert!(c.next_message().is_err(), "compressed messages are refused");
    assert_eq!(
        crate::grpc::percent_encode("bad 100% ünicode\n"),
        "bad 100%25 %C3%BCnicode%0A"
    );
}

#[test]
fn secrets_messages() {
    use super::secrets::*;
    // GetSecretRequest {ID: tok}; the answer's data is field 1.
    let r = GetSecretRequest {
        id: "tok".into(),
        ..Default::default()
    };
    assert_eq!(r.encode_to_vec(), [0x0a, 0x03, b't', b'o', b'k']);
    let a = GetSecretResponse::decode(&[0x0a, 0x02, b'h', b'i'][..]).unwrap();
    assert_eq!(a.data, b"hi");
}

#[test]
fn auth_messages() {
    use super::secrets::*;
    // CredentialsRequest {Host: h}; the answer: Username (1) u, Secret (2) p.
    let r = CredentialsRequest { host: "h".into() };
    assert_eq!(r.encode_to_vec(), [0x0a, 0x01, b'h']);
    let a = CredentialsResponse::decode(&[0x0a, 0x01, b'u', 0x12, 0x01, b'p'][..]).unwrap();
    assert_eq!((a.username.as_str(), a.secret.as_str()), ("u", "p"));
}
