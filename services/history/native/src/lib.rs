//! `crm import`'s per-line work in compiled code, one call per chunk of lines (see
//! services/history/import_workers.py and native_encoder.py): each line exactly as `crm export` writes it is
//! read (`canonical`), checked against its event type's fields, given its field facts when each of its rules is
//! one known here and surely passes (else `field_facts` decides, in Python), and turned into its stored event's
//! row of PostgreSQL's binary COPY format (state as the eventsourcing mapper writes it, personal fields sealed
//! with AES-256-GCM under HMAC-SHA256(import secret, record), or the key the key table holds). Any line this
//! code is not sure of is left to the Python path (`None` in the answer): every refusal keeps its message.

mod canonical;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use canonical::{Node, J};
use hmac::{Hmac, Mac};
use pyo3::prelude::*;
use pyo3::types::{PyAny, PyBytes, PyDict, PyList, PyString, PyTuple};
use sha2::Sha256;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Bool,
    Time,
    Date,
    Dec,
    Uuid,
    MapStr,
    ListStr,
    ListMapStr,
}

fn kind_of(name: &str) -> Option<Kind> {
    Some(match name {
        "str" => Kind::Str,
        "int" => Kind::Int,
        "bool" => Kind::Bool,
        "datetime" => Kind::Time,
        "date" => Kind::Date,
        "Decimal" => Kind::Dec,
        "UUID" => Kind::Uuid,
        "dict[str,str]" => Kind::MapStr,
        "list[str]" => Kind::ListStr,
        "list[dict[str,str]]" => Kind::ListMapStr,
        _ => return None,
    })
}

struct Field {
    name: String,
    key: Py<PyString>,
    kind: Kind,
    nullable: bool,
    tag: Option<Vec<u8>>,             // the `_type_` of its tagged form in the state (JSON), if of a tagged type
    missing: Option<(PyObject, Node<'static>)>, // what it means when a line leaves it out (Python value, JSON)
}

/// A field rule of `field_checks` the compiled path knows: it takes a line's facts only when each surely passes.
enum Check {
    Text,
    Choice(HashSet<String>),
    Amount,
    Currency(HashSet<String>),
    BusinessDate,
    ExternalId,
}

/// What `field_facts` does for lines of one type.
struct FactsPlan {
    name: Py<PyString>,
    occurred: usize,
    stripped: Vec<usize>,
    checks: Vec<(usize, Check)>,
    facts: Vec<(usize, bool)>, // each value handed on, and whether it is an id (then its 128-bit integer)
}

/// A line read in export's form and checked against its event type, borrowing from the line.
struct View<'a> {
    schema: &'a Schema,
    subject: &'a str,
    version: i64,
    values: Vec<&'a Node<'a>>, // each field's value in the schema's order (what a missing one means, if missing)
    given: &'a [(Cow<'a, str>, Node<'a>)],
    lacking: bool,
    recorded_at: Option<&'a str>,
    person: Option<&'a str>,
    line: &'a [u8],
}

enum Slot {
    Field(usize),
    Time,
    Const(Vec<u8>),
}

struct Schema {
    schema: PyObject,
    topic: Vec<u8>,
    fields: Vec<Field>,
    state: Vec<(Vec<u8>, Slot)>, // each key of the state (as JSON text) and what its value is
    personal: Vec<usize>,        // fields sealed when not empty, in the mapper's order
    person: Option<usize>,       // the field naming the person the record is about
    sealed: bool,                // a record with personal fields (it gets a key)
    facts: Option<FactsPlan>,
}

#[pyclass(unsendable)]
struct Encoder {
    schemas: HashMap<String, Schema>,
    line_cls: PyObject,
    time_tag: Vec<u8>, // JSON
    recorded: Vec<u8>, // the state's timestamp when the line has no recorded_at (JSON)
    secret_key: Hmac<Sha256>,
    nonces: std::cell::RefCell<(Vec<u8>, usize)>, // random bytes read ahead for the nonces, how many used
}

fn json_text(text: &str) -> Vec<u8> {
    serde_json::to_vec(text).unwrap()
}

#[pymethods]
impl Encoder {
    /// `specs`: for each event type (name, schema object, topic, fields, state plan, personal fields, person
    /// field, sealed), as `services.history.native_encoder` describes them.
    #[new]
    fn new(
        py: Python<'_>,
        specs: Vec<(String, PyObject, String, Vec<(String, String, bool, Option<String>, Option<(PyObject, String)>)>,
                    Vec<(String, String, Option<String>)>, Vec<String>, Option<String>, bool,
                    Option<(Vec<String>, Vec<(String, String, Vec<String>)>, Vec<(String, bool)>, bool)>)>,
        line_cls: PyObject,
        time_tag: String,
        recorded: String,
        secret: Vec<u8>,
    ) -> PyResult<Self> {
        let mut schemas = HashMap::new();
        'spec: for (name, schema, topic, fields, state, personal, person, sealed, facts) in specs {
            let mut built = Vec::new();
            for (fname, kind, nullable, tag, missing) in fields {
                let Some(kind) = kind_of(&kind) else { continue 'spec };
                let missing = match missing {
                    Some((value, json)) => { // held for the encoder's life (a few bytes per field)
                        let json: &'static [u8] = Box::leak(json.into_bytes().into_boxed_slice());
                        match canonical::read(json) { Some(node) => Some((value, node)), None => continue 'spec }
                    }
                    None => None,
                };
                built.push(Field { key: PyString::intern(py, &fname).unbind(), name: fname, kind, nullable, tag: tag.as_deref().map(json_text), missing });
            }
            let index = |n: &str| built.iter().position(|f| f.name == n);
            let mut plan = Vec::new();
            for (key, slot, constant) in state {
                let slot = match slot.as_str() {
                    "field" => Slot::Field(index(&key).unwrap()),
                    "time" => Slot::Time,
                    _ => Slot::Const(constant.unwrap_or_default().into_bytes()),
                };
                plan.push((json_text(&key), slot));
            }
            let personal = personal.iter().filter_map(|n| index(n)).collect();
            let facts = facts.and_then(|plan| facts_plan(py, &name, &built, plan));
            let person = person.as_deref().and_then(index);
            schemas.insert(name.clone(), Schema { schema, topic: topic.into_bytes(), fields: built, state: plan,
                                                  personal, person, sealed, facts });
        }
        let secret_key = <Hmac<Sha256> as Mac>::new_from_slice(&secret).unwrap();
        Ok(Encoder { schemas, line_cls, time_tag: json_text(&time_tag), recorded: recorded.into_bytes(), secret_key,
                     nonces: std::cell::RefCell::new((Vec::new(), 0)) })
    }

    /// The chunk's lines: (each line's HistoryLine or None: the Python path's, the COPY rows of the others
    /// joined, where each line's row ends in them, and the key rows of their records).
    /// `held`: None (the key table was found empty: every key derived), or what gives the keys the table holds
    /// of a list of records (`KeyStore.secrets`), asked once for the chunk, as `DerivedKeys.prepare` asks.
    #[pyo3(signature = (lines, held=None))]
    fn encode<'py>(&mut self, py: Python<'py>, lines: Vec<Bound<'py, PyBytes>>, held: Option<Bound<'py, PyAny>>)
                   -> PyResult<(Bound<'py, PyList>, Bound<'py, PyBytes>, Vec<usize>, Vec<(String, String, Option<String>)>, usize)> {
        let texts: Vec<&[u8]> = lines.iter().map(|line| trimmed(line.as_bytes())).collect();
        let trees: Vec<Option<Node>> = texts.iter().map(|text| canonical::read(text)).collect();
        let views: Vec<Option<View>> = trees.iter().zip(&texts).map(|(tree, text)| tree.as_ref().and_then(|t| self.view(t, text))).collect();
        // each record with personal fields once, with its person if any line names one (`subjects_of_lines`)
        let mut subjects: Vec<(&str, Option<&str>)> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for view in views.iter().flatten().filter(|v| v.schema.sealed) {
            match seen.get(view.subject) {
                Some(&at) => { if view.person.is_some() { subjects[at].1 = view.person; } }
                None => { seen.insert(view.subject, subjects.len()); subjects.push((view.subject, view.person)); }
            }
        }
        let known: HashMap<String, Vec<u8>> = match &held {
            Some(secrets) if !subjects.is_empty() =>
                secrets.call1((subjects.iter().map(|(s, _)| *s).collect::<Vec<_>>(),))?.extract()?,
            _ => HashMap::new(),
        };
        let engine = base64::engine::general_purpose::STANDARD;
        let mut keys: HashMap<&str, Option<[u8; 32]>> = HashMap::with_capacity(subjects.len());
        let mut rows = Vec::new();
        for &(subject, person) in &subjects {
            match known.get(subject) { // a held key: a row only to bind its person (`DerivedKeys.prepare`)
                Some(secret) => {
                    keys.insert(subject, secret.as_slice().try_into().ok()); // not AES-256: the Python path's
                    if person.is_some() { rows.push((subject.to_string(), engine.encode(secret), person.map(str::to_string))); }
                }
                None => {
                    let key = self.key_of(subject);
                    keys.insert(subject, Some(key));
                    rows.push((subject.to_string(), engine.encode(key), person.map(str::to_string)));
                }
            }
        }
        let items = PyList::empty(py);
        let mut data: Vec<u8> = Vec::with_capacity(lines.len() * 400);
        let mut ends = Vec::with_capacity(lines.len());
        let mut left = 0; // lines whose facts are Python's to make (`field_facts`, or the whole Python path)
        for view in &views {
            let key = view.as_ref().and_then(|v| if v.schema.sealed { keys[v.subject].as_ref().map(Some) } else { Some(None) });
            match (view, key) {
                (Some(view), Some(key)) => match self.emit(py, view, key, &mut data) {
                    Some((item, has_facts)) => { left += usize::from(!has_facts); items.append(item)? }
                    None => { left += 1; items.append(py.None())? }
                },
                _ => { left += 1; items.append(py.None())? }
            }
            ends.push(data.len());
        }
        Ok((items, PyBytes::new(py, &data), ends, rows, left))
    }

    /// HMAC-SHA256(secret, record) (`RecordKeys`), for the tests.
    fn record_key<'py>(&self, py: Python<'py>, record: &str) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key_of(record))
    }
}

fn trimmed(line: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r'); // JSON's own: orjson refuses \x0b, \x0c
    let start = line.iter().position(|b| !space(b)).unwrap_or(line.len());
    let end = line.iter().rposition(|b| !space(b)).map_or(start, |e| e + 1);
    &line[start..end]
}

fn canonical_uuid(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 36 && b.iter().enumerate().all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' }
                                                   else { c.is_ascii_digit() || (b'a'..=b'f').contains(c) })
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) { return None; }
    Some(b.iter().fold(0, |n, d| n * 10 + (d - b'0') as u32))
}

/// YYYY-MM-DD, a day of the calendar (year 1 to 9999), as `date.fromisoformat` reads and `isoformat` writes it.
fn canonical_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' { return false; }
    let (Some(y), Some(m), Some(d)) = (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) else { return false };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m { 1 | 3 | 5 | 7 | 8 | 10 | 12 => 31, 4 | 6 | 9 | 11 => 30, 2 => if leap { 29 } else { 28 }, _ => 0 };
    y >= 1 && d >= 1 && d <= days
}

/// The UTC form orjson writes (`stored_state.CANONICAL_UTC`), not ending in .000000: its tagged text is
/// itself with +00:00 for Z (`iso_time`).
fn canonical_utc(text: &str) -> bool {
    let b = text.as_bytes();
    if !(b.len() == 20 || b.len() == 27) || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[b.len() - 1] != b'Z' {
        return false;
    }
    let (Some(h), Some(mi), Some(s)) = (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19])) else { return false };
    if b.len() == 27 && (b[19] != b'.' || digits(&b[20..26]).is_none() || &b[19..26] == b".000000") { return false; }
    canonical_date(&b[0..10]) && h < 24 && mi < 60 && s < 60
}

/// -?(0|[1-9][0-9]*)(.[0-9]{1,6})?: text `str(Decimal(text))` gives back unchanged (at most 6 decimals: no exponent).
fn canonical_decimal(text: &str) -> bool {
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let (whole, fraction) = match b.iter().position(|c| *c == b'.') { Some(p) => (&b[..p], Some(&b[p + 1..])), None => (b, None) };
    let whole_ok = whole == b"0" || (!whole.is_empty() && whole[0] != b'0' && whole.iter().all(u8::is_ascii_digit));
    whole_ok && fraction.map_or(true, |f| !f.is_empty() && f.len() <= 6 && f.iter().all(u8::is_ascii_digit))
}

fn all_text(values: &[Node]) -> bool {
    values.iter().all(Node::is_string)
}

fn text_map(value: &Node) -> bool {
    value.as_object().is_some_and(|m| m.iter().all(|(_, v)| v.is_string()))
}

/// Whether `value` is what the field holds (the Python path's JSON type and converter would take it).
fn fits(field: &Field, value: &Node) -> bool {
    if value.is_null() { return field.nullable; }
    match field.kind {
        Kind::Str => value.is_string(),
        Kind::Int => value.is_i64(),
        Kind::Bool => value.is_boolean(),
        Kind::Time => value.as_str().is_some_and(canonical_utc),
        Kind::Date => value.as_str().is_some_and(|t| canonical_date(t.as_bytes())),
        Kind::Dec => value.as_str().is_some_and(canonical_decimal),
        Kind::Uuid => value.as_str().is_some_and(canonical_uuid),
        Kind::MapStr => text_map(value),
        Kind::ListStr => value.as_array().is_some_and(|a| all_text(a)),
        Kind::ListMapStr => value.as_array().is_some_and(|a| a.iter().all(text_map)),
    }
}

fn to_py(py: Python<'_>, value: &Node) -> PyResult<PyObject> {
    Ok(match &value.value {
        J::Null => py.None(),
        J::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        J::Int(n) => n.into_pyobject(py)?.into_any().unbind(),
        J::Str(s) => PyString::new(py, s).into_any().unbind(),
        J::Arr(a) => {
            let list = PyList::empty(py);
            for v in a { list.append(to_py(py, v)?)?; }
            list.into_any().unbind()
        }
        J::Obj(m) => {
            let dict = PyDict::new(py);
            for (k, v) in m { dict.set_item(k.as_ref(), to_py(py, v)?)?; }
            dict.into_any().unbind()
        }
    })
}

const ROW_FIELDS: [u8; 2] = 4i16.to_be_bytes();

impl Encoder {
    fn key_of(&self, record: &str) -> [u8; 32] {
        let mut mac = self.secret_key.clone();
        mac.update(record.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn nonce(&self) -> [u8; 12] {
        let mut nonces = self.nonces.borrow_mut();
        let (bytes, used) = &mut *nonces;
        if *used + 12 > bytes.len() { // a read of random bytes per 4,096 nonces
            *bytes = vec![0; 12 * 4096];
            getrandom::getrandom(bytes).expect("no random bytes for the seals' nonces");
            *used = 0;
        }
        *used += 12;
        bytes[*used - 12..*used].try_into().unwrap()
    }

    /// What a line read in export's form holds, checked against its event type (None: the Python path's).
    fn view<'a>(&'a self, parsed: &'a Node<'a>, line: &'a [u8]) -> Option<View<'a>> {
        let record = parsed.as_object()?;
        let key = |at: usize, name: &str| record.get(at).filter(|(k, _)| k == name).map(|(_, v)| v);
        let (kind, subject, version) = (key(0, "type")?, key(1, "subject")?, key(2, "version")?);
        let (recorded_at, given) = match record.len() {
            4 => (None, key(3, "data")?),
            5 => (Some(key(3, "recorded_at")?.as_str().filter(|t| canonical_utc(t))?), key(4, "data")?),
            _ => return None,
        };
        let schema = self.schemas.get(kind.as_str()?)?;
        let subject = subject.as_str().filter(|s| canonical_uuid(s))?;
        let version = version.as_i64().filter(|v| *v >= 1)?;
        let given = given.as_object()?;
        // the fields in the schema's order; one a line may lack only if it has a meaning when missing
        let mut values: Vec<&Node> = Vec::with_capacity(schema.fields.len());
        let mut given_iter = given.iter().peekable();
        let mut lacking = false;
        for field in &schema.fields {
            match given_iter.peek() {
                Some((name, value)) if **name == field.name => {
                    if !fits(field, value) { return None; }
                    values.push(value);
                    given_iter.next();
                }
                _ => { values.push(&field.missing.as_ref()?.1); lacking = true; }
            }
        }
        if given_iter.next().is_some() { return None; }
        let person = match schema.person {
            Some(at) => Some(values[at].as_str().filter(|p| canonical_uuid(p))?),
            None => None,
        };
        for &at in &schema.personal {
            if !(values[at].is_string() || values[at].is_null()) { return None; }
        }
        Some(View { schema, subject, version, values, given, lacking, recorded_at, person, line })
    }

    /// A line's Facts (or HistoryLine for `field_facts`), its COPY row appended to `data`, sealed with `key`;
    /// None (and nothing appended) if the Python path must read it.
    fn emit(&self, py: Python<'_>, view: &View, key: Option<&[u8; 32]>, data: &mut Vec<u8>) -> Option<(PyObject, bool)> {
        let View { schema, subject, version, values, given, lacking, recorded_at, line, .. } = view;
        let (schema, subject, version, lacking, recorded_at) = (*schema, *subject, *version, *lacking, *recorded_at);
        // the row: 4 fields; the uuid's 16 bytes; the version's 8; the topic; the state (its length set after)
        let start = data.len();
        data.extend_from_slice(&ROW_FIELDS);
        data.extend_from_slice(&16i32.to_be_bytes());
        data.extend_from_slice(&uuid_int(subject).to_be_bytes());
        data.extend_from_slice(&8i32.to_be_bytes());
        data.extend_from_slice(&version.to_be_bytes());
        data.extend_from_slice(&(schema.topic.len() as i32).to_be_bytes());
        data.extend_from_slice(&schema.topic);
        let length_at = data.len();
        data.extend_from_slice(&[0; 4]);
        if self.state(data, schema, subject, values, recorded_at, key).is_none() {
            data.truncate(start); // the Python path's line: nothing of it here
            return None;
        }
        let length = (data.len() - length_at - 4) as i32;
        data[length_at..length_at + 4].copy_from_slice(&length.to_be_bytes());
        let item = match facts(py, schema, subject, version, values, line) {
            Some(facts) => facts.map(|f| (f, true)),
            None => self.item(py, schema, subject, version, values, given, lacking, recorded_at).map(|l| (l, false)),
        };
        let Ok(item) = item else { data.truncate(start); return None };
        Some(item)
    }

    #[allow(clippy::too_many_arguments)]
    fn item(&self, py: Python<'_>, schema: &Schema, subject: &str, version: i64, values: &[&Node],
            given: &[(Cow<str>, Node)], lacking: bool, recorded_at: Option<&str>) -> PyResult<PyObject> {
        let has = |name: &str| given.iter().any(|(k, _)| k == name);
        let mut dict = PyDict::new(py);
        for (field, value) in schema.fields.iter().zip(values) {
            if !lacking || has(&field.name) { dict.set_item(field.key.bind(py), to_py(py, value)?)?; }
        }
        if lacking { // completed by `EventSchema.completed` itself: its key order decides which field a refusal names
            dict = schema.schema.bind(py).call_method1("completed", (dict,))?.downcast_into::<PyDict>()?;
        }
        let args = PyTuple::new(py, [schema.schema.clone_ref(py), PyString::new(py, subject).into_any().unbind(),
                                     version.into_pyobject(py)?.into_any().unbind(), dict.into_any().unbind(),
                                     match recorded_at { Some(t) => PyString::new(py, t).into_any().unbind(), None => py.None() }])?;
        Ok(self.line_cls.bind(py).call1(args)?.unbind())
    }

    /// The stored state, as `stored_state.StateEncoder.state` writes it.
    fn state(&self, out: &mut Vec<u8>, schema: &Schema, subject: &str, values: &[&Node], recorded_at: Option<&str>,
             record_key: Option<&[u8; 32]>) -> Option<()> {
        let mut cipher: Option<Aes256Gcm> = None;
        out.push(b'{');
        for (i, (key, slot)) in schema.state.iter().enumerate() {
            if i > 0 { out.push(b','); }
            out.extend_from_slice(key);
            out.push(b':');
            match slot {
                Slot::Const(json) => out.extend_from_slice(json),
                Slot::Time => match recorded_at {
                    Some(t) => tagged(out, &self.time_tag, &[&t.as_bytes()[..t.len() - 1], b"+00:00"]),
                    None => out.extend_from_slice(&self.recorded),
                },
                Slot::Field(at) => {
                    let (field, value) = (&schema.fields[*at], values[*at]);
                    if let (Some(tag), Some(text)) = (&field.tag, value.as_str()) {
                        // texts of these kinds are ASCII needing no escape: written as they are
                        let b = text.as_bytes();
                        match field.kind {
                            Kind::Time if canonical_utc(text) => tagged(out, tag, &[&b[..b.len() - 1], b"+00:00"]),
                            Kind::Uuid if canonical_uuid(text) =>
                                tagged(out, tag, &[&b[0..8], &b[9..13], &b[14..18], &b[19..23], &b[24..36]]),
                            Kind::Date | Kind::Dec => tagged(out, tag, &[b]),
                            _ => return None,
                        }
                    } else if schema.personal.contains(at) && value.as_str().is_some_and(|t| !t.is_empty()) {
                        let cipher = match &mut cipher { Some(c) => c, None => cipher.insert(Aes256Gcm::new(record_key?.into())) };
                        let nonce = self.nonce();
                        let plain = value.as_str().unwrap().as_bytes();
                        let mut sealed = nonce.to_vec();
                        sealed.extend(cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: subject.as_bytes() }).ok()?);
                        out.extend_from_slice(b"\"pii:v1:"); // the subject is a canonical id: no escape
                        out.extend_from_slice(subject.as_bytes());
                        out.push(b':');
                        let at = out.len();
                        out.resize(at + (sealed.len() + 2) / 3 * 4, 0);
                        base64::engine::general_purpose::URL_SAFE.encode_slice(&sealed, &mut out[at..]).ok()?;
                        out.push(b'"');
                    } else {
                        if field.tag.is_some() && !value.is_null() { return None; }
                        out.extend_from_slice(value.raw); // canonical: its own encoding
                    }
                }
            }
        }
        out.push(b'}');
        Some(())
    }
}

/// A tagged value, `{"_type_":tag,"_data_":text}`: `tag` is JSON already, `text` (in parts) needs no escape.
fn tagged(out: &mut Vec<u8>, tag: &[u8], text: &[&[u8]]) {
    out.extend_from_slice(b"{\"_type_\":");
    out.extend_from_slice(tag);
    out.extend_from_slice(b",\"_data_\":\"");
    for part in text { out.extend_from_slice(part); }
    out.extend_from_slice(b"\"}");
}

#[allow(clippy::type_complexity)]
fn facts_plan(py: Python<'_>, name: &str, fields: &[Field],
              (stripped, checks, facts, derived): (Vec<String>, Vec<(String, String, Vec<String>)>, Vec<(String, bool)>, bool))
              -> Option<FactsPlan> {
    let index = |n: &str| fields.iter().position(|f| f.name == n);
    let mut built = Vec::new();
    for (field, kind, allowed) in checks {
        let check = match kind.as_str() {
            "text" => Check::Text,
            "choice" => Check::Choice(allowed.into_iter().collect()),
            "amount" => Check::Amount,
            "currency" => Check::Currency(allowed.into_iter().collect()),
            "business_date" => Check::BusinessDate,
            "external_id" => Check::ExternalId,
            _ => return None,
        };
        built.push((index(&field)?, check));
    }
    // a record made with an external id must have the id derived from it: the compiled path takes only ""
    if derived && !built.iter().any(|(at, c)| matches!(c, Check::ExternalId) && fields[*at].name == "external_id") {
        return None;
    }
    let occurred = index("occurred_at").filter(|at| fields[*at].kind == Kind::Time && !fields[*at].nullable)?;
    Some(FactsPlan {
        name: PyString::intern(py, name).unbind(),
        occurred,
        stripped: stripped.iter().map(|n| index(n)).collect::<Option<_>>()?,
        checks: built,
        facts: facts.iter().map(|(n, r)| index(n).map(|at| (at, *r))).collect::<Option<_>>()?,
    })
}

/// What Python's `str.isspace` says of a character (Rust's White_Space and the four separators \x1c-\x1f).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Text that `require_text` passes (not blank) without surrounding spaces: the first and last characters are not spaces.
fn stripped_text(text: &str) -> bool {
    text.chars().next().is_some_and(|c| !py_space(c)) && text.chars().next_back().is_some_and(|c| !py_space(c))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468
}

/// µs since the epoch of a canonical UTC time within business time's range (1900 to 2999), else None.
fn business_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let n = |r: std::ops::Range<usize>| digits(&b[r]).map(i64::from);
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    if !(1900..3000).contains(&y) { return None; }
    let fraction = if b.len() == 27 { n(20..26)? } else { 0 };
    Some(((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) * 1_000_000) + fraction)
}

fn passes(check: &Check, value: &Node) -> bool {
    match check {
        Check::Text => value.as_str().is_some_and(stripped_text),
        Check::Choice(allowed) | Check::Currency(allowed) => value.as_str().is_some_and(|v| allowed.contains(v)),
        Check::Amount => match &value.value {
            J::Str(t) => canonical_decimal(t) && !t.starts_with('-') && t.split('.').next().unwrap().len() <= 15,
            J::Int(i) => (0..1_000_000_000_000_000).contains(i),
            _ => false,
        },
        Check::BusinessDate => value.is_null() || value.as_str().is_some_and(|t| {
            canonical_date(t.as_bytes()) && digits(&t.as_bytes()[0..4]).is_some_and(|y| (1900..3000).contains(&y))
        }),
        Check::ExternalId => value.as_str() == Some(""),
    }
}

fn uuid_int(text: &str) -> u128 {
    text.bytes().filter(|c| *c != b'-').fold(0, |n, c| n << 4 | (c as char).to_digit(16).unwrap() as u128)
}

/// `field_facts`'s answer for a line it surely passes (None: `field_facts` must look, Some(Err): Python failed).
fn facts(py: Python<'_>, schema: &Schema, subject: &str, version: i64, values: &[&Node], line: &[u8]) -> Option<PyResult<PyObject>> {
    let plan = schema.facts.as_ref()?;
    if line.windows(6).any(|w| w == b"\\u0000") { return None; }  // NUL: field_facts names the field
    let micros = business_micros(values[plan.occurred].as_str()?)?;
    for &at in &plan.stripped {
        if !values[at].as_str().is_some_and(|t| t.is_empty() || stripped_text(t)) { return None; }
    }
    for (at, check) in &plan.checks {
        if !passes(check, values[*at]) { return None; }
    }
    Some((|| {
        let mut handed = Vec::with_capacity(plan.facts.len());
        for &(at, reference) in &plan.facts {
            handed.push(match (reference, &values[at].value) {
                (true, J::Str(id)) => uuid_int(id).into_pyobject(py)?.into_any().unbind(),
                _ => to_py(py, values[at])?,
            });
        }
        let facts = PyTuple::new(py, [plan.name.clone_ref(py).into_any(), uuid_int(subject).into_pyobject(py)?.into_any().unbind(),
                                      version.into_pyobject(py)?.into_any().unbind(), micros.into_pyobject(py)?.into_any().unbind(),
                                      PyTuple::new(py, handed)?.into_any().unbind()])?;
        Ok(facts.into_any().unbind())
    })())
}


#[pymodule]
fn crm_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Encoder>()?;
    Ok(())
}
