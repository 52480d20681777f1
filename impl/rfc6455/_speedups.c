/* rfc6455._speedups: the compiled accelerator for the codec's hot path.
 *
 * Invariants:
 * - Optional. Every function here has a pure-Python twin in rfc6455.frame (utf8_check's is
 *   in rfc6455.utf8) that gives the same result for every input (read_header returns False
 *   where its twin raises the protocol error, parse_frames stops there with refused set: the
 *   parser then asks the Python read_header for the error, so one function decides which
 *   error wins); rfc6455.speedups picks this module when it imports and the environment does
 *   not set RFC6455_NO_SPEEDUPS=1. Differential Hypothesis tests
 *   (fuzz/test_speedups_properties.py) hold the two to the same answers (wire_frame, which
 *   only our own code calls, may refuse a call with several wrong arguments with another of
 *   the exception types its twin might raise).
 * - No threads, the GIL is held throughout: the work per call is a linear pass. The only
 *   state is server_read's binding (set once at import) and the per-type slot offsets of
 *   the attributes it reads (get_attr), each checked against its type's version tag.
 * - server_read's buffer_updated is the Python rfc6455.shell.Shell.buffer_updated for a read
 *   of whole messages in one frame: the same tests in the same order, the same hooks, the
 *   same write; every other read goes to the Python code it would have reached.
 * - Inputs are anything that exposes the buffer protocol (bytes, bytearray, memoryview,
 *   array); masking returns a new bytes object.
 * - UTF-8 (RFC 6455 §8.1): parse_frames decodes a whole text message with CPython's own
 *   strict decoder, leaving an invalid one as bytes for the connection to fail on; utf8_check
 *   validates a message fed in chunks, carrying the incomplete sequence a chunk ends in to
 *   the next call, and answers None at the first byte no continuation can make valid, where
 *   its twin rfc6455.utf8._utf8_check_python does (the connection asks that one why).
 * - parse_messages goes one step further for the common case, a whole message in one frame
 *   (FIN, no RSV bit, TEXT or BINARY): it makes the message itself (its str after strict
 *   UTF-8 decoding, or its bytes), or the event object holding it, and stops without
 *   consuming at the first frame that is anything else, incomplete, refused or invalid
 *   text. It decides no error: the caller handles that frame the pure-Python way.
 * - answer_messages is the server's read in one pass: each such message goes to the
 *   handler's on_message as it is made, and an exact str or bytes reply is appended to the
 *   connection's output list as its frame while the connection is open. It stops where
 *   parse_messages would, and hands back a reply of any other kind, or what the hook
 *   raised, for the shell to handle;
 *   it calls no Python code but the hook and the state attribute's read.
 *
 * RFC 6455 §5.3: octet i of the transformed data is octet i of the original data XOR octet
 * (i MOD 4) of the masking key. Eight octets at a time is the same thing with the key
 * repeated twice in a 64-bit word, since 8 is a multiple of 4.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

/* Where the toolchain can dispatch at load time (GCC, glibc's ifunc, x86-64), also build an
 * AVX2 copy of the loop: the baseline SSE2 one reaches about 0.75 of memcpy, which glibc
 * runs with AVX2; the AVX2 copy matches it. Elsewhere the portable loop is all there is. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define MASK_TARGETS __attribute__((target_clones("avx2", "default")))
#else
#define MASK_TARGETS
#endif

#if defined(_MSC_VER)
#define RESTRICT __restrict
#else
#define RESTRICT restrict
#endif

/* XOR n bytes of src with the 4-byte key, starting at key octet 0, into dst. */
MASK_TARGETS
static void
mask_bytes(unsigned char *RESTRICT dst, const unsigned char *RESTRICT src, Py_ssize_t n,
           const unsigned char key[4])
{
    unsigned char key8[8];
    uint64_t key64;
    Py_ssize_t words = n / 8, w, i;

    memcpy(key8, key, 4);
    memcpy(key8 + 4, key, 4);
    memcpy(&key64, key8, 8); /* memory order, so the word works on any endianness */

    /* memcpy of 8 bytes compiles to one unaligned load or store: no alignment assumptions.
     * A plain counted loop over words lets the compiler vectorise it. */
    for (w = 0; w < words; w++) {
        uint64_t word;
        memcpy(&word, src + 8 * w, 8);
        word ^= key64;
        memcpy(dst + 8 * w, &word, 8);
    }
    /* The tail starts at a multiple of 8, so the key octet of byte i is i & 3. */
    for (i = words * 8; i < n; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

/* Get a contiguous, read-only view of obj; non-contiguous exporters are copied first.
 * On success *holder owns a reference the caller must drop after PyBuffer_Release. */
static int
get_contiguous(PyObject *obj, Py_buffer *view, PyObject **holder)
{
    *holder = NULL;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_BufferError) || !PyObject_CheckBuffer(obj)) {
        return -1;
    }
    /* A strided memoryview: fall back to a contiguous copy, as bytes(data) would make. */
    PyErr_Clear();
    *holder = PyBytes_FromObject(obj);
    if (*holder == NULL) {
        return -1;
    }
    if (PyObject_GetBuffer(*holder, view, PyBUF_SIMPLE) != 0) {
        Py_CLEAR(*holder);
        return -1;
    }
    return 0;
}

/* Copy the 4-byte masking key in key_obj (any bytes-like object) to key. */
static int
read_key(PyObject *key_obj, unsigned char key[4])
{
    Py_buffer key_view;
    PyObject *key_holder;

    if (get_contiguous(key_obj, &key_view, &key_holder) != 0) {
        return -1;
    }
    if (key_view.len != 4) {
        PyBuffer_Release(&key_view);
        Py_XDECREF(key_holder);
        PyErr_SetString(PyExc_ValueError, "a masking key is exactly 4 bytes");
        return -1;
    }
    memcpy(key, key_view.buf, 4);
    PyBuffer_Release(&key_view);
    Py_XDECREF(key_holder);
    return 0;
}

static PyObject *
masked_copy(PyObject *data, PyObject *key_obj, Py_ssize_t start, Py_ssize_t end, int sliced)
{
    Py_buffer data_view;
    PyObject *data_holder, *result = NULL;
    unsigned char key[4];

    if (read_key(key_obj, key) != 0) {
        return NULL;
    }
    if (get_contiguous(data, &data_view, &data_holder) != 0) {
        return NULL;
    }
    if (!sliced) {
        start = 0;
        end = data_view.len;
    }
    else if (start < 0 || end < start || end > data_view.len) {
        PyErr_Format(PyExc_ValueError,
                     "slice [%zd:%zd] is outside a buffer of %zd bytes",
                     start, end, data_view.len);
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, end - start);
    if (result != NULL && end > start) {
        mask_bytes((unsigned char *)PyBytes_AS_STRING(result),
                   (const unsigned char *)data_view.buf + start, end - start, key);
    }
done:
    PyBuffer_Release(&data_view);
    Py_XDECREF(data_holder);
    return result;
}

PyDoc_STRVAR(mask_doc,
"mask(data, masking_key, /) -> bytes\n"
"--\n"
"\n"
"data XOR the 4-byte masking_key repeated (RFC 6455 \xc2\xa7" "5.3); its own inverse.");

static PyObject *
speedups_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "mask() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    return masked_copy(args[0], args[1], 0, 0, 0);
}

PyDoc_STRVAR(mask_slice_doc,
"mask_slice(data, masking_key, start, end, /) -> bytes\n"
"--\n"
"\n"
"data[start:end] XOR the masking key, without copying the slice first: the parser\n"
"unmasks a payload straight out of its receive buffer (RFC 6455 \xc2\xa7" "5.3).");

static PyObject *
speedups_mask_slice(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t start, end;

    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "mask_slice() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    start = PyLong_AsSsize_t(args[2]);
    end = start == -1 && PyErr_Occurred() ? -1 : PyLong_AsSsize_t(args[3]);
    if (end == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            /* An index no buffer can reach: the same error as any other bad slice. */
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError, "slice [%R:%R] is outside the buffer",
                         args[2], args[3]);
        }
        return NULL;
    }
    return masked_copy(args[0], args[1], start, end, 1);
}

/* UTF-8 as RFC 3629 §4 defines it: the sequences valid UTF-8 allows, checked as they arrive.
 * A lead byte fixes the sequence's length and the range of its second byte (which excludes
 * overlong forms, the surrogates U+D800-U+DFFF and everything above U+10FFFF); every further
 * byte is a continuation byte 80-BF. A sequence is refused at its first byte that breaks
 * this, so a prefix no continuation can make valid is refused at once (fail fast). */

enum { SEQ_INVALID = -1, SEQ_TRUNCATED = 0 };

/* The sequence at s[i] (i < n): its length when it is complete and valid, SEQ_TRUNCATED when
 * s ends inside it with every byte so far valid, SEQ_INVALID otherwise. */
static int
utf8_sequence(const unsigned char *s, Py_ssize_t n, Py_ssize_t i)
{
    unsigned int lead = s[i], low = 0x80, high = 0xBF;
    int length;

    if (lead < 0x80) {
        return 1;
    }
    if (lead < 0xC2) {
        return SEQ_INVALID; /* a continuation byte, or C0/C1: overlong two-byte forms */
    }
    if (lead < 0xE0) {
        length = 2;
    }
    else if (lead < 0xF0) {
        length = 3;
        if (lead == 0xE0) {
            low = 0xA0; /* below: overlong */
        }
        else if (lead == 0xED) {
            high = 0x9F; /* above: a surrogate */
        }
    }
    else if (lead < 0xF5) {
        length = 4;
        if (lead == 0xF0) {
            low = 0x90; /* below: overlong */
        }
        else if (lead == 0xF4) {
            high = 0x8F; /* above: past U+10FFFF */
        }
    }
    else {
        return SEQ_INVALID; /* F5-FF never occur */
    }
    for (int k = 1; k < length; k++) {
        unsigned int byte;
        if (i + k >= n) {
            return SEQ_TRUNCATED;
        }
        byte = s[i + k];
        if (byte < low || byte > high) {
            return SEQ_INVALID;
        }
        low = 0x80;
        high = 0xBF;
    }
    return length;
}

/* Scan s[start:n]: SEQ_INVALID, or SEQ_TRUNCATED / 1 (complete) with *stop where the
 * trailing incomplete sequence starts (n when there is none). */
static int
utf8_scan(const unsigned char *s, Py_ssize_t n, Py_ssize_t start, Py_ssize_t *stop)
{
    Py_ssize_t i = start;

    while (i < n) {
        int length;
        if (s[i] < 0x80) {
            /* ASCII, eight bytes at a time while no byte has its top bit set. */
            while (i + 8 <= n) {
                uint64_t word;
                memcpy(&word, s + i, 8);
                if (word & UINT64_C(0x8080808080808080)) {
                    break;
                }
                i += 8;
            }
            while (i < n && s[i] < 0x80) {
                i++;
            }
            continue;
        }
        length = utf8_sequence(s, n, i);
        if (length <= 0) {
            *stop = i;
            return length;
        }
        i += length;
    }
    *stop = n;
    return 1;
}

/* The longest pending prefix a chunk can leave: three bytes of a four-byte sequence. */
#define UTF8_MAX_PENDING 3

PyDoc_STRVAR(utf8_check_doc,
"utf8_check(data, pending, final, /) -> bytes | None\n"
"--\n"
"\n"
"Whether pending + data can still be (final: is) valid UTF-8 (RFC 3629 \xc2\xa7" "4): the\n"
"incomplete sequence data ends in (the next call's pending, b'' when none), or None as\n"
"soon as a byte breaks the encoding. pending is at most 3 bytes (ValueError otherwise).");

static PyObject *
speedups_utf8_check(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data_view, pending_view;
    PyObject *data_holder, *pending_holder, *result = NULL;
    unsigned char head[2 * UTF8_MAX_PENDING];
    const unsigned char *data;
    Py_ssize_t n, p, head_length, i = 0, stop;
    int final, verdict = 1;

    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "utf8_check() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    final = PyObject_IsTrue(args[2]);
    if (final < 0) {
        return NULL;
    }
    if (get_contiguous(args[1], &pending_view, &pending_holder) != 0) {
        return NULL;
    }
    p = pending_view.len;
    if (p > UTF8_MAX_PENDING) {
        PyBuffer_Release(&pending_view);
        Py_XDECREF(pending_holder);
        PyErr_SetString(PyExc_ValueError, "at most 3 bytes of UTF-8 can be pending");
        return NULL;
    }
    memcpy(head, pending_view.buf, (size_t)p);
    PyBuffer_Release(&pending_view);
    Py_XDECREF(pending_holder);
    if (get_contiguous(args[0], &data_view, &data_holder) != 0) {
        return NULL;
    }
    data = (const unsigned char *)data_view.buf;
    n = data_view.len;

    /* The pending sequence first, completed from data's first bytes: a sequence that
     * starts in head ends at most 3 bytes after it. */
    head_length = p + (n < UTF8_MAX_PENDING ? n : UTF8_MAX_PENDING);
    memcpy(head + p, data, (size_t)(head_length - p));
    while (i < p) {
        int length = utf8_sequence(head, head_length, i);
        if (length == SEQ_INVALID) {
            goto invalid;
        }
        if (length == SEQ_TRUNCATED) {
            /* All of data fit in head and the sequence is still open. */
            if (final) {
                goto invalid;
            }
            result = PyBytes_FromStringAndSize((const char *)head + i, head_length - i);
            goto done;
        }
        i += length;
    }
    verdict = utf8_scan(data, n, i - p, &stop);
    if (verdict == SEQ_INVALID || (verdict == SEQ_TRUNCATED && final)) {
        goto invalid;
    }
    result = PyBytes_FromStringAndSize((const char *)data + stop, n - stop);
    goto done;
invalid:
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data_view);
    Py_XDECREF(data_holder);
    return result;
}

/* A whole text message's payload (len bytes at src, masked with key unless it is NULL) as
 * its str, or as bytes when it is not valid UTF-8 (the connection then says why). */
static PyObject *
text_payload(const unsigned char *src, Py_ssize_t len, const unsigned char *key)
{
    unsigned char small[256], *scratch = small;
    PyObject *result;

    if (key != NULL && len > (Py_ssize_t)sizeof(small)) {
        scratch = PyMem_Malloc((size_t)len);
        if (scratch == NULL) {
            return PyErr_NoMemory();
        }
    }
    if (key != NULL) {
        mask_bytes(scratch, src, len, key);
        src = scratch;
    }
    result = PyUnicode_DecodeUTF8((const char *)src, len, "strict");
    if (result == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        result = PyBytes_FromStringAndSize((const char *)src, len);
    }
    if (scratch != small) {
        PyMem_Free(scratch);
    }
    return result;
}

/* Opcodes RFC 6455 §5.2 defines: continuation, text, binary, close, ping, pong. */
#define KNOWN_OPCODES ((1u << 0x0) | (1u << 0x1) | (1u << 0x2) | (1u << 0x8) | (1u << 0x9) | (1u << 0xA))

/* The arguments every header check needs, converted once per call. */
typedef struct {
    int expect_masked;
    int has_limit;
    long long limit;
    long rsv_mask;
    int decode_text; /* parse_frames only: hand out a whole text message as its str */
} header_rules;

/* One parsed header: the first byte, the payload length, the header's size with the key. */
typedef struct {
    unsigned int first;
    unsigned long long length;
    Py_ssize_t header_size;
    const unsigned char *key; /* NULL when the frame is not masked */
} header_info;

enum { HEADER_REFUSED = -1, HEADER_INCOMPLETE = 0, HEADER_OK = 1 };

/* Read and check the header at p (RFC 6455 §5.2, §5.1, §5.5): HEADER_OK, HEADER_INCOMPLETE
 * until all of it has arrived, or HEADER_REFUSED where the Python twin raises. */
static int
parse_header(const unsigned char *p, Py_ssize_t available, const header_rules *rules,
             header_info *out)
{
    unsigned int first, second, opcode, rsv;
    unsigned long long length;
    Py_ssize_t header_size = 2;
    int masked;

    if (available < 2) {
        return HEADER_INCOMPLETE;
    }
    first = p[0];
    second = p[1];
    opcode = first & 0x0F;
    rsv = (first >> 4) & 0x07;
    if (!(KNOWN_OPCODES & (1u << opcode))) {
        return HEADER_REFUSED; /* reserved opcode */
    }
    if (opcode >= 0x8) {
        /* §5.5: control frames are never fragmented, carry no RSV bit, at most 125 bytes. */
        if (!(first & 0x80) || rsv || (second & 0x7F) > 125) {
            return HEADER_REFUSED;
        }
    }
    else if (rsv & ~rules->rsv_mask) {
        return HEADER_REFUSED; /* an RSV bit no negotiated extension defines */
    }
    masked = second >= 0x80;
    if (masked != rules->expect_masked) {
        return HEADER_REFUSED; /* §5.1: clients mask, servers do not */
    }
    length = second & 0x7F;
    if (length == 126) {
        header_size = 4;
        if (available < header_size) {
            return HEADER_INCOMPLETE;
        }
        length = ((unsigned long long)p[2] << 8) | p[3];
    }
    else if (length == 127) {
        header_size = 10;
        if (available < header_size) {
            return HEADER_INCOMPLETE;
        }
        length = 0;
        for (int i = 2; i < 10; i++) {
            length = (length << 8) | p[i];
        }
        if (length >> 63) {
            return HEADER_REFUSED; /* §5.2: the most significant bit MUST be 0 */
        }
    }
    if (rules->has_limit && (long long)length > rules->limit) {
        return HEADER_REFUSED; /* over max_frame_size */
    }
    out->key = NULL;
    if (masked) {
        if (available < header_size + 4) {
            return HEADER_INCOMPLETE;
        }
        out->key = p + header_size;
        header_size += 4;
    }
    out->first = first;
    out->length = length;
    out->header_size = header_size;
    return HEADER_OK;
}

/* Convert (buffer, pos, expect_masked, max_frame_size, rsv_mask[, decode_text]), with at
 * most `most` arguments: on success the buffer is held in *view and the caller releases it. */
static int
parse_arguments(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t most,
                Py_buffer *view, Py_ssize_t *pos, header_rules *rules)
{
    int overflow = 0;

    if (nargs < 5 || nargs > most) {
        if (most == 5) {
            PyErr_Format(PyExc_TypeError, "%s() takes 5 arguments (%zd given)", name, nargs);
        }
        else {
            PyErr_Format(PyExc_TypeError, "%s() takes 5 to %zd arguments (%zd given)", name,
                         most, nargs);
        }
        return -1;
    }
    *pos = PyLong_AsSsize_t(args[1]);
    if (*pos == -1 && PyErr_Occurred()) {
        return -1;
    }
    rules->expect_masked = PyObject_IsTrue(args[2]);
    if (rules->expect_masked < 0) {
        return -1;
    }
    rules->has_limit = 0;
    rules->limit = 0;
    if (args[3] != Py_None) {
        rules->limit = PyLong_AsLongLongAndOverflow(args[3], &overflow);
        if (rules->limit == -1 && PyErr_Occurred()) {
            return -1;
        }
        /* Past the range of a 64-bit length: above it no limit binds, below it all do. */
        rules->has_limit = overflow <= 0;
        if (overflow < 0) {
            rules->limit = -1;
        }
    }
    rules->rsv_mask = PyLong_AsLong(args[4]);
    if (rules->rsv_mask == -1 && PyErr_Occurred()) {
        return -1;
    }
    rules->decode_text = 0;
    if (nargs > 5) {
        rules->decode_text = PyObject_IsTrue(args[5]);
        if (rules->decode_text < 0) {
            return -1;
        }
    }
    if (PyObject_GetBuffer(args[0], view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (*pos < 0 || *pos > view->len) {
        PyErr_Format(PyExc_ValueError, "position %zd is outside a buffer of %zd bytes", *pos,
                     view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(read_header_doc,
"read_header(buffer, pos, expect_masked, max_frame_size, rsv_mask, /)\n"
"--\n"
"\n"
"The frame header at buffer[pos:] (RFC 6455 \xc2\xa7" "5.2) as (first byte, payload length,\n"
"payload start, masking key or None); None until the whole header has arrived; False for\n"
"a header its pure-Python twin refuses, which the caller then asks for the error.");

static PyObject *
speedups_read_header(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos;
    header_rules rules;
    header_info header;
    PyObject *key;
    int status;

    (void)module;
    if (parse_arguments("read_header", args, nargs, 5, &view, &pos, &rules) < 0) {
        return NULL;
    }
    status = parse_header((const unsigned char *)view.buf + pos, view.len - pos, &rules, &header);
    if (status != HEADER_OK) {
        PyBuffer_Release(&view);
        if (status == HEADER_REFUSED) {
            Py_RETURN_FALSE;
        }
        Py_RETURN_NONE;
    }
    if (header.key != NULL) {
        key = PyBytes_FromStringAndSize((const char *)header.key, 4);
    }
    else {
        key = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&view);
    if (key == NULL) {
        return NULL;
    }
    return Py_BuildValue("(IKnN)", header.first, header.length, pos + header.header_size, key);
}

PyDoc_STRVAR(parse_frames_doc,
"parse_frames(buffer, pos, expect_masked, max_frame_size, rsv_mask, decode_text=False, /)\n"
"--\n"
"\n"
"Every complete frame from buffer[pos:] in one pass (RFC 6455 \xc2\xa7" "5.2), as\n"
"(items, end, refused): items is flat, first byte then unmasked payload for each frame;\n"
"end is where the first frame not returned starts; refused is True when that frame's\n"
"header is one the pure-Python read_header raises for (the caller asks it why). With\n"
"decode_text, the payload of a final TEXT frame without RSV bits is its str when it is\n"
"valid UTF-8 (\xc2\xa7" "8.1), and stays bytes when it is not.");

static PyObject *
speedups_parse_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos;
    header_rules rules;
    header_info header;
    PyObject *items, *first = NULL, *payload = NULL, *result;
    const unsigned char *base;
    int status = HEADER_INCOMPLETE;

    (void)module;
    if (parse_arguments("parse_frames", args, nargs, 6, &view, &pos, &rules) < 0) {
        return NULL;
    }
    items = PyList_New(0);
    if (items == NULL) {
        goto error;
    }
    base = (const unsigned char *)view.buf;
    for (;;) {
        Py_ssize_t available = view.len - pos;
        status = parse_header(base + pos, available, &rules, &header);
        if (status != HEADER_OK) {
            break;
        }
        /* The length fits below 2**63 and available is a Py_ssize_t: no overflow here. */
        if (header.length > (unsigned long long)(available - header.header_size)) {
            status = HEADER_INCOMPLETE;
            break;
        }
        first = PyLong_FromUnsignedLong(header.first);
        if (first == NULL) {
            goto error;
        }
        if (rules.decode_text && header.first == 0x81) {
            /* A final TEXT frame without RSV bits: the connection's whole message when no
             * fragmented one is in progress, so it is decoded (and validated) here. */
            payload = text_payload(base + pos + header.header_size, (Py_ssize_t)header.length,
                                   header.key);
            if (payload == NULL) {
                goto error;
            }
        }
        else if ((payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)header.length)) == NULL) {
            goto error;
        }
        else if (header.key != NULL) {
            /* §5.3: unmasked straight out of the receive buffer into the payload. */
            mask_bytes((unsigned char *)PyBytes_AS_STRING(payload),
                       base + pos + header.header_size, (Py_ssize_t)header.length, header.key);
        }
        else if (header.length) {
            memcpy(PyBytes_AS_STRING(payload), base + pos + header.header_size,
                   (size_t)header.length);
        }
        if (PyList_Append(items, first) < 0 || PyList_Append(items, payload) < 0) {
            goto error;
        }
        Py_CLEAR(first);
        Py_CLEAR(payload);
        pos += header.header_size + (Py_ssize_t)header.length;
    }
    PyBuffer_Release(&view);
    result = Py_BuildValue("(NnO)", items, pos, status == HEADER_REFUSED ? Py_True : Py_False);
    return result;

error:
    Py_XDECREF(first);
    Py_XDECREF(payload);
    Py_XDECREF(items);
    PyBuffer_Release(&view);
    return NULL;
}

/* How parse_messages hands out a message of one kind: the data itself (type NULL), or an
 * instance of type holding it in the object slot at offset, made without calling the type
 * (the event dataclasses' __init__ only stores that slot). */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t offset;
} message_maker;

/* Check that type_obj is None or a class whose instances hold an object slot named data. */
static int
message_maker_init(PyObject *type_obj, message_maker *maker)
{
    PyObject *descr;
    PyMemberDef *member;
    PyTypeObject *type;

    maker->type = NULL;
    maker->offset = 0;
    if (type_obj == Py_None) {
        return 0;
    }
    if (!PyType_Check(type_obj)) {
        PyErr_SetString(PyExc_TypeError, "a message type is a class or None");
        return -1;
    }
    type = (PyTypeObject *)type_obj;
    descr = PyObject_GetAttrString(type_obj, "data");
    if (descr == NULL && !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return -1;
    }
    PyErr_Clear();
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        Py_XDECREF(descr);
        PyErr_Format(PyExc_TypeError, "%R keeps its data in no slot", type_obj);
        return -1;
    }
    member = ((PyMemberDescrObject *)descr)->d_member;
    /* The slot must be one of this type's layout (a descriptor borrowed from an unrelated
     * class would name another layout's offset), holding any object. */
    if (!PyType_IsSubtype(type, PyDescr_TYPE(descr)) || member->type != T_OBJECT_EX ||
        type->tp_alloc == NULL || type->tp_itemsize != 0 ||
        member->offset + (Py_ssize_t)sizeof(PyObject *) > type->tp_basicsize) {
        Py_DECREF(descr);
        PyErr_Format(PyExc_TypeError, "%R keeps its data in no object slot", type_obj);
        return -1;
    }
    maker->type = type;
    maker->offset = member->offset;
    Py_DECREF(descr);
    return 0;
}

/* The message for data (a new reference, stolen): data itself, or an instance holding it. */
static PyObject *
make_message(const message_maker *maker, PyObject *data)
{
    PyObject *message;

    if (data == NULL || maker->type == NULL) {
        return data;
    }
    message = maker->type->tp_alloc(maker->type, 0);
    if (message == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    /* tp_alloc zeroes the object: the slot is empty, and now owns data. */
    *(PyObject **)((char *)message + maker->offset) = data;
    return message;
}

/* The count and the out list (the last argument) of parse_messages and answer_messages. */
static PyObject *
out_list(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected)
{
    if (nargs != expected) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected,
                     nargs);
        return NULL;
    }
    if (!PyList_Check(args[expected - 1])) {
        PyErr_Format(PyExc_TypeError, "%s() appends to a list", name);
        return NULL;
    }
    return args[expected - 1];
}

/* The data of the whole message in one frame whose header is at p (the frame has arrived):
 * its str (strict UTF-8, RFC 6455 §8.1) or bytes, unmasked (§5.3). NULL with *not_text set
 * and no exception for text that is not UTF-8, NULL with an exception on a fault. */
static PyObject *
whole_message_data(const unsigned char *p, const header_info *header, int *not_text)
{
    const unsigned char *src = p + header->header_size;
    Py_ssize_t length = (Py_ssize_t)header->length;
    PyObject *data;

    *not_text = 0;
    if (header->first == 0x81) {
        data = text_payload(src, length, header->key);
        if (data != NULL && !PyUnicode_Check(data)) {
            Py_DECREF(data); /* not UTF-8: the caller says why */
            *not_text = 1;
            return NULL;
        }
        return data;
    }
    data = PyBytes_FromStringAndSize(NULL, length);
    if (data != NULL && header->key != NULL) {
        mask_bytes((unsigned char *)PyBytes_AS_STRING(data), src, length, header->key);
    }
    else if (data != NULL && length) {
        memcpy(PyBytes_AS_STRING(data), src, (size_t)length);
    }
    return data;
}

PyDoc_STRVAR(parse_messages_doc,
"parse_messages(buffer, pos, expect_masked, max_frame_size, rsv_mask, text_type,\n"
"               binary_type, out, /) -> int\n"
"--\n"
"\n"
"Append to the list out each whole message in one frame from buffer[pos:] (FIN, no RSV\n"
"bit, TEXT or BINARY; RFC 6455 \xc2\xa7" "5.2, \xc2\xa7" "5.3): a text message's str (strict\n"
"UTF-8, \xc2\xa7" "8.1) or a binary message's bytes, or an instance of text_type /\n"
"binary_type holding it in its data slot when the type is not None. Stops at the first\n"
"frame that is not such a message, has not fully arrived, has a header read_header\n"
"refuses or is not valid UTF-8, and returns where it starts: the caller handles it.");

static PyObject *
speedups_parse_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos;
    header_rules rules;
    header_info header;
    message_maker text_maker, binary_maker;
    PyObject *out;
    const unsigned char *base;

    (void)module;
    out = out_list("parse_messages", args, nargs, 8);
    if (out == NULL) {
        return NULL;
    }
    if (message_maker_init(args[5], &text_maker) < 0 ||
        message_maker_init(args[6], &binary_maker) < 0) {
        return NULL;
    }
    if (parse_arguments("parse_messages", args, 5, 5, &view, &pos, &rules) < 0) {
        return NULL;
    }
    base = (const unsigned char *)view.buf;
    while (parse_header(base + pos, view.len - pos, &rules, &header) == HEADER_OK) {
        PyObject *data, *message;
        int appended, not_text;

        if ((header.first != 0x81 && header.first != 0x82) ||
            header.length > (unsigned long long)(view.len - pos - header.header_size)) {
            break; /* not a whole message in one frame, or not all here yet */
        }
        data = whole_message_data(base + pos, &header, &not_text);
        if (not_text) {
            break;
        }
        message = make_message(header.first == 0x81 ? &text_maker : &binary_maker, data);
        if (message == NULL) {
            PyBuffer_Release(&view);
            return NULL;
        }
        appended = PyList_Append(out, message);
        Py_DECREF(message);
        if (appended < 0) {
            PyBuffer_Release(&view);
            return NULL;
        }
        pos += header.header_size + (Py_ssize_t)header.length;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
}

PyDoc_STRVAR(wire_frame_doc,
"wire_frame(first, payload, masking_key, /) -> bytes\n"
"--\n"
"\n"
"One frame's wire bytes (RFC 6455 \xc2\xa7" "5.2) in one allocation: the first header byte\n"
"as given, the payload length in the fewest bytes, then the masking key and the masked\n"
"payload (\xc2\xa7" "5.3), or the payload as it is when masking_key is None.");

/* One frame's wire bytes as a new bytes object (RFC 6455 §5.2): first, the payload length
 * in the fewest bytes, then the masking key and the masked payload (§5.3), or the payload
 * as it is when key is NULL. */
static PyObject *
build_frame(unsigned char first, const unsigned char *payload, Py_ssize_t length,
            const unsigned char *key)
{
    PyObject *result;
    unsigned char *out;
    /* §5.2: "the minimal number of bytes MUST be used to encode the length". */
    Py_ssize_t header_size = length < 126 ? 2 : length < 0x10000 ? 4 : 10;

    result = PyBytes_FromStringAndSize(NULL, header_size + (key != NULL ? 4 : 0) + length);
    if (result == NULL) {
        return NULL;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    out[0] = first;
    if (header_size == 2) {
        out[1] = (unsigned char)length;
    }
    else if (header_size == 4) {
        out[1] = 126;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
    }
    else {
        unsigned long long wide = (unsigned long long)length;
        out[1] = 127;
        for (int i = 9; i >= 2; i--) {
            out[i] = (unsigned char)wide;
            wide >>= 8;
        }
    }
    if (key != NULL) {
        out[1] |= 0x80;
        memcpy(out + header_size, key, 4);
        mask_bytes(out + header_size + 4, payload, length, key);
    }
    else if (length) {
        memcpy(out + header_size, payload, (size_t)length);
    }
    return result;
}

static PyObject *
speedups_wire_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer payload_view;
    PyObject *payload_holder, *result = NULL;
    unsigned char key[4];
    long first;
    int masked;

    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "wire_frame() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    /* Checked in the order the Python twin meets them: the payload, the byte, the key. */
    if (get_contiguous(args[1], &payload_view, &payload_holder) != 0) {
        return NULL;
    }
    first = PyLong_AsLong(args[0]);
    if (first == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            goto done;
        }
        PyErr_Clear();
        first = -1; /* out of range, as below */
    }
    if (first < 0 || first > 0xFF) {
        PyErr_SetString(PyExc_ValueError, "a first header byte is 0-255");
        goto done;
    }
    masked = args[2] != Py_None;
    if (masked && read_key(args[2], key) != 0) {
        goto done;
    }
    result = build_frame((unsigned char)first, (const unsigned char *)payload_view.buf,
                         payload_view.len, masked ? key : NULL);
done:
    PyBuffer_Release(&payload_view);
    Py_XDECREF(payload_holder);
    return result;
}

/* -- Attributes read from C: the names, and the slots found for them --------------------- */

enum {
    R_STAGE, R_TASK, R_ANSWER_READS, R_HANDLER, R_ENVIRON, R_CONNECTION, R_GET_BUFFER, R_VIEW,
    R_STATE, R_CLIENT, R_EVENTS, R_FRAMES, R_PLAIN_DATA, R_MESSAGES, R_PASSTHROUGH, R_PARSER,
    R_BUFFER, R_POS, R_PENDING_HEADER, R_EXPECT_MASKED, R_MAX_FRAME_SIZE, R_RSV_MASK, R_OUT,
    R_TRANSPORT, R_IS_CLOSING, R_WRITE, R_ANSWERED_READ, R_NAMES
};

static const char *const read_name_text[R_NAMES] = {
    "_stage", "_task", "_answer_reads", "handler", "environ", "connection", "get_buffer",
    "view", "state", "_client", "_events", "_frames", "_plain_data", "_messages",
    "passthrough", "_parser", "_buffer", "_pos", "_pending_header", "_expect_masked",
    "max_frame_size", "rsv_mask", "_out", "_transport", "is_closing", "write",
    "_answered_read",
};

static PyObject *read_names[R_NAMES];

/* Where a name is found on the instances of one type, as CPython's own attribute caches
 * keep it: the slot's offset when the type's attribute is a slot (a member descriptor,
 * which nothing in an instance can shadow), -1 for any other attribute. Valid while the
 * type's version tag is unchanged (a class attribute set anew changes it; tags are never
 * reused, so a type freed and another made at its address cannot match). */
typedef struct {
    PyTypeObject *type;
    unsigned int version;
    Py_ssize_t offset;
} slot_cache;

static slot_cache read_slots[R_NAMES];

/* obj.<name> (a new reference), or NULL with an exception: read straight from its slot
 * when it is one, else the generic way. */
static PyObject *
get_attr(PyObject *obj, int name)
{
    PyTypeObject *type = Py_TYPE(obj);
    slot_cache *cache = &read_slots[name];

    if (cache->type != type || cache->version != type->tp_version_tag ||
        !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        PyObject *descr = _PyType_Lookup(type, read_names[name]); /* borrowed */

        cache->type = (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) ? type : NULL;
        cache->version = type->tp_version_tag;
        cache->offset = -1;
        if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            if (member->type == T_OBJECT_EX) {
                cache->offset = member->offset;
            }
        }
    }
    if (cache->offset >= 0) {
        PyObject *value = *(PyObject **)((char *)obj + cache->offset);
        if (value != NULL) {
            return Py_NewRef(value);
        }
    }
    return PyObject_GetAttr(obj, read_names[name]); /* (an empty slot raises there) */
}
/* What answer_messages stopped on, its result's second item (frame.py names them). */
enum {
    ANSWER_STOPPED = 0, /* at a frame it does not answer, or the end */
    ANSWER_REPLY = 1,   /* on_message returned a reply it does not send itself */
    ANSWER_RAISED = 2,  /* on_message raised */
    ANSWER_FAULT = 3,   /* our own fault after a hook ran (no memory): the caller fails 1011 */
};

/* Interned once: the hook's name. */
static PyObject *on_message_name;

/* The server's frame for reply, an exact str or bytes, appended to out: 0 when appended,
 * 1 when a str cannot be encoded (the caller sends it, and meets the error, the Python
 * way), -1 with an exception set otherwise. */
static int
append_reply(PyObject *out, PyObject *reply)
{
    PyObject *encoded = NULL, *frame;
    const char *payload;
    Py_ssize_t length;
    unsigned char first = 0x82;
    int appended;

    if (PyUnicode_Check(reply)) {
        first = 0x81;
        if (PyUnicode_IS_COMPACT_ASCII(reply)) {
            payload = (const char *)PyUnicode_DATA(reply); /* ASCII is its own UTF-8 */
            length = PyUnicode_GET_LENGTH(reply);
        }
        else {
            encoded = PyUnicode_AsUTF8String(reply);
            if (encoded == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                    PyErr_Clear(); /* a lone surrogate: str.encode raises it for the caller */
                    return 1;
                }
                return -1;
            }
            payload = PyBytes_AS_STRING(encoded);
            length = PyBytes_GET_SIZE(encoded);
        }
    }
    else {
        payload = PyBytes_AS_STRING(reply);
        length = PyBytes_GET_SIZE(reply);
    }
    /* RFC 6455 §5.1: a server's frames are not masked. */
    frame = build_frame(first, (const unsigned char *)payload, length, NULL);
    Py_XDECREF(encoded);
    if (frame == NULL) {
        return -1;
    }
    appended = PyList_Append(out, frame);
    Py_DECREF(frame);
    return appended;
}

PyDoc_STRVAR(answer_messages_doc,
"answer_messages(buffer, pos, expect_masked, max_frame_size, rsv_mask, handler, environ,\n"
"                connection, open_state, out, /) -> (int, int, object)\n"
"--\n"
"\n"
"For each whole message in one frame from buffer[pos:] (what parse_messages makes of it),\n"
"call handler.on_message(environ, message), and append the server's unmasked frame for an\n"
"exact str (text) or bytes (binary) reply to the list out while connection.state is\n"
"open_state. Returns (end, outcome, value): end is where the first frame not handled\n"
"starts; outcome 0 when it stopped at a frame that is not such a message (or the end),\n"
"1 when the hook returned value, a reply of another kind, for the caller to send, 2 when\n"
"the hook raised value, 3 when value is an error of ours met after a hook ran. An error\n"
"before any hook ran raises.");

/* The fetched exception, normalised with its traceback attached (a new reference). */
static PyObject *
fetch_exception(void)
{
    PyObject *type, *value, *traceback;

    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(traceback);
    return value;
}

/* The loop of answer_messages over base[*pos:len]: *pos ends where the first frame not
 * handled starts, and the outcome is returned with *value (a new reference or NULL). -1
 * with an exception set when a fault of ours came before any hook ran (nothing consumed). */
static int
answer_loop(const unsigned char *base, Py_ssize_t len, Py_ssize_t *pos,
            const header_rules *rules, PyObject *handler, PyObject *environ,
            PyObject *connection, PyObject *open_state, PyObject *out, PyObject **value)
{
    header_info header;
    PyObject *call[4];
    int called = 0;

    *value = NULL;
    /* call[0] is free for the vectorcall protocol's own use (PY_VECTORCALL_ARGUMENTS_OFFSET). */
    call[1] = handler;
    call[2] = environ;
    while (parse_header(base + *pos, len - *pos, rules, &header) == HEADER_OK) {
        PyObject *data, *reply, *state;
        int open, sent, not_text;

        if ((header.first != 0x81 && header.first != 0x82) ||
            header.length > (unsigned long long)(len - *pos - header.header_size)) {
            break; /* not a whole message in one frame, or not all here yet */
        }
        data = whole_message_data(base + *pos, &header, &not_text);
        if (not_text) {
            break; /* not UTF-8: the caller fails the connection with 1007 */
        }
        if (data == NULL) {
            goto fault;
        }
        call[0] = NULL;
        call[3] = data;
        /* The frame is handled once its hook runs, whatever the hook does. */
        *pos += header.header_size + (Py_ssize_t)header.length;
        called = 1;
        reply = PyObject_VectorcallMethod(on_message_name, call + 1,
                                          3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(data);
        if (reply == NULL) {
            *value = fetch_exception();
            return ANSWER_RAISED;
        }
        if (reply != Py_None && !PyUnicode_CheckExact(reply) && !PyBytes_CheckExact(reply)) {
            *value = reply; /* awaitable, or bytes-like: the caller's to send */
            return ANSWER_REPLY;
        }
        /* The hook may have closed the connection: nothing follows our Close (§5.5.1), but
         * the messages that arrived with this one are still handed out, as the connection
         * hands out the whole messages it parsed from one read. */
        state = get_attr(connection, R_STATE);
        if (state == NULL) {
            Py_DECREF(reply);
            goto fault;
        }
        open = state == open_state;
        Py_DECREF(state);
        sent = 0;
        if (open && reply != Py_None) {
            sent = append_reply(out, reply);
            if (sent == 1) {
                *value = reply; /* a str that is not UTF-8: the caller sends it, and raises */
                return ANSWER_REPLY;
            }
        }
        Py_DECREF(reply);
        if (sent < 0) {
            goto fault;
        }
    }
    return ANSWER_STOPPED;

fault:
    if (!called) {
        return -1;
    }
    *value = fetch_exception();
    return ANSWER_FAULT;
}

static PyObject *
speedups_answer_messages(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t pos;
    header_rules rules;
    PyObject *out, *value;
    int outcome;

    (void)module;
    out = out_list("answer_messages", args, nargs, 10);
    if (out == NULL) {
        return NULL;
    }
    if (parse_arguments("answer_messages", args, 5, 5, &view, &pos, &rules) < 0) {
        return NULL;
    }
    outcome = answer_loop((const unsigned char *)view.buf, view.len, &pos, &rules, args[5],
                          args[6], args[7], args[8], out, &value);
    PyBuffer_Release(&view);
    if (outcome < 0) {
        return NULL; /* nothing consumed: the caller takes the normal path */
    }
    return Py_BuildValue("(niN)", pos, outcome, value != NULL ? value : Py_NewRef(Py_None));
}

/* -- The server's read, compiled: rfc6455.shell's buffer_updated for the common read ------
 *
 * server_read(cls, stage_open, state_open, reference) gives a method for cls, a subclass of
 * rfc6455.shell.Shell: buffer_updated(nbytes) as the Python one (reference) does it for a
 * read that connection.receive_answering answers whole, with no Python frame of ours in
 * between (the transport calls it, it calls the hook). Whatever else a read is goes to the
 * Python code it would have reached: reference itself when the answering pass does not apply
 * (tested before any hook runs), shell._answered_read(data, end, outcome, value) with what
 * the pass left when it did not answer every byte or the connection is no longer open. The
 * objects are read through their attributes, the names the Python code gives them; the
 * answering differential tests (fuzz/test_answering_properties.py) run sessions through this
 * method and through the events one at a time. One binding per process (the last call). */

/* Set by server_read: Stage.OPEN, State.OPEN and the Python buffer_updated. */
static PyObject *read_stage_open, *read_state_open, *read_reference;

/* Whether obj.<name> is true (1), false (0), or -1 with an exception. */
static int
attr_true(PyObject *obj, int name)
{
    PyObject *value = get_attr(obj, name);
    int truth;

    if (value == NULL) {
        return -1;
    }
    truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* Whether obj.<name> is expected (1), not (0), or -1 with an exception. */
static int
attr_is(PyObject *obj, int name, PyObject *expected)
{
    PyObject *value = get_attr(obj, name);

    if (value == NULL) {
        return -1;
    }
    Py_DECREF(value);
    return value == expected;
}

/* The parser's rules, when it holds nothing (no byte buffered, no header pending): 1, with
 * *rules set; 0 when it holds something; -1 with an exception. */
static int
idle_parser_rules(PyObject *parser, header_rules *rules)
{
    PyObject *buffer, *pos, *args[5] = {NULL, NULL, NULL, NULL, NULL};
    Py_ssize_t held, start;
    Py_buffer unused;
    int idle = -1;

    buffer = get_attr(parser, R_BUFFER);
    if (buffer == NULL) {
        return -1;
    }
    held = PyObject_Size(buffer);
    Py_DECREF(buffer);
    pos = get_attr(parser, R_POS);
    if (held < 0 || pos == NULL) {
        Py_XDECREF(pos);
        return -1;
    }
    start = PyLong_AsSsize_t(pos);
    Py_DECREF(pos);
    if (start == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (held - start) {
        return 0;
    }
    idle = attr_is(parser, R_PENDING_HEADER, Py_None);
    if (idle != 1) {
        return idle;
    }
    /* The rules as parse_arguments reads them, over an empty buffer. */
    args[0] = PyBytes_FromStringAndSize(NULL, 0);
    args[1] = PyLong_FromLong(0);
    args[2] = get_attr(parser, R_EXPECT_MASKED);
    args[3] = get_attr(parser, R_MAX_FRAME_SIZE);
    args[4] = get_attr(parser, R_RSV_MASK);
    idle = -1;
    if (args[0] && args[1] && args[2] && args[3] && args[4] &&
        parse_arguments("server_read", args, 5, 5, &unused, &start, rules) == 0) {
        PyBuffer_Release(&unused);
        idle = 1;
    }
    for (int i = 0; i < 5; i++) {
        Py_XDECREF(args[i]);
    }
    return idle;
}

/* Whether connection.receive_answering applies to a read (the tests it makes, in its
 * order): 1 with *parser and *out (new references) and *rules set, 0 if not, -1 with an
 * exception. */
static int
answering_applies(PyObject *connection, PyObject **parser, PyObject **out,
                  header_rules *rules)
{
    int test;

    *parser = *out = NULL;
    if ((test = attr_is(connection, R_STATE, read_state_open)) != 1 ||
        (test = attr_true(connection, R_CLIENT)) != 0 ||
        (test = attr_true(connection, R_EVENTS)) != 0 ||
        (test = attr_true(connection, R_FRAMES)) != 0 ||
        (test = attr_true(connection, R_PLAIN_DATA)) != 1) {
        return test < 0 ? -1 : 0;
    }
    {
        PyObject *messages = get_attr(connection, R_MESSAGES);
        if (messages == NULL) {
            return -1;
        }
        test = attr_true(messages, R_PASSTHROUGH);
        Py_DECREF(messages);
        if (test != 1) {
            return test;
        }
    }
    *parser = get_attr(connection, R_PARSER);
    if (*parser == NULL) {
        return -1;
    }
    test = idle_parser_rules(*parser, rules);
    if (test == 1) {
        *out = get_attr(connection, R_OUT);
        if (*out == NULL || !PyList_Check(*out)) {
            if (*out != NULL) {
                PyErr_SetString(PyExc_TypeError, "the connection's output is a list");
            }
            test = -1;
        }
    }
    if (test != 1) {
        Py_CLEAR(*parser);
        Py_CLEAR(*out);
    }
    return test;
}

/* Write what out holds as one bytes to the shell's transport, unless TCP is going away
 * (the shell's _flush, inline); out is emptied. 0, or -1 with an exception. */
static int
write_out(PyObject *shell, PyObject *out)
{
    PyObject *sent, *transport, *result;
    Py_ssize_t count = PyList_GET_SIZE(out);
    int ok;

    if (count == 0) {
        return 0;
    }
    if (count == 1) {
        sent = Py_NewRef(PyList_GET_ITEM(out, 0));
    }
    else {
        PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
        sent = empty == NULL ? NULL : PyObject_CallMethod(empty, "join", "O", out);
        Py_XDECREF(empty);
    }
    if (sent == NULL || PyList_SetSlice(out, 0, count, NULL) < 0) {
        Py_XDECREF(sent);
        return -1;
    }
    ok = PyObject_IsTrue(sent); /* (nothing to write: an empty frame list's join) */
    transport = ok == 1 ? get_attr(shell, R_TRANSPORT) : NULL;
    if (ok < 0 || (ok && transport == NULL)) {
        Py_DECREF(sent);
        return -1;
    }
    if (ok && transport != Py_None && (ok = attr_is(shell, R_STAGE, read_stage_open)) == 1) {
        result = PyObject_CallMethodNoArgs(transport, read_names[R_IS_CLOSING]);
        ok = result == NULL ? -1 : PyObject_Not(result);
        Py_XDECREF(result);
        if (ok == 1) {
            result = PyObject_CallMethodOneArg(transport, read_names[R_WRITE], sent);
            ok = result == NULL ? -1 : 0;
            Py_XDECREF(result);
        }
    }
    Py_XDECREF(transport);
    Py_DECREF(sent);
    return ok < 0 ? -1 : 0;
}

/* The read as the Python buffer_updated takes it: one this method does not answer, or
 * one it met an error on before any hook ran (nothing consumed; the Python code meets the
 * same error where it would, and handles it as it does: a broken codec fails with 1011). */
static PyObject *
read_by_reference(PyObject *shell, PyObject *nbytes)
{
    PyObject *args[2] = {shell, nbytes};

    if (PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            return NULL; /* (KeyboardInterrupt and the like are not ours to drop) */
        }
        PyErr_Clear();
    }
    return PyObject_Vectorcall(read_reference, args, 2, NULL);
}

/* The answering pass over base[:len] for the shell, then the write or the rest. */
static PyObject *
answer_read(PyObject *shell, PyObject *connection, PyObject *view_obj, Py_ssize_t len,
            PyObject *nbytes)
{
    PyObject *parser, *out, *handler = NULL, *environ = NULL, *value = NULL, *result = NULL;
    Py_buffer view;
    header_rules rules;
    Py_ssize_t end = 0;
    int outcome, open;

    if (answering_applies(connection, &parser, &out, &rules) != 1) {
        return read_by_reference(shell, nbytes);
    }
    Py_DECREF(parser);
    handler = get_attr(shell, R_HANDLER);
    environ = handler == NULL ? NULL : get_attr(shell, R_ENVIRON);
    if (environ == NULL || PyObject_GetBuffer(view_obj, &view, PyBUF_SIMPLE) < 0) {
        result = read_by_reference(shell, nbytes);
        goto done;
    }
    if (len > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "more bytes read than the receive buffer holds");
        goto done;
    }
    outcome = answer_loop((const unsigned char *)view.buf, len, &end, &rules, handler,
                          environ, connection, read_state_open, out, &value);
    PyBuffer_Release(&view);
    if (outcome < 0) {
        /* A fault of ours before any hook ran (where the Python pass fails again, and the
         * bytes are received the usual way). */
        result = read_by_reference(shell, nbytes);
        goto done;
    }
    open = attr_is(connection, R_STATE, read_state_open);
    if (open < 0) {
        goto done;
    }
    if (end == len && outcome == ANSWER_STOPPED && open) {
        if (write_out(shell, out) == 0) {
            result = Py_NewRef(Py_None);
        }
        goto done;
    }
    {
        PyObject *data = PySequence_GetSlice(view_obj, 0, len);
        PyObject *call[5] = {shell, data, NULL, NULL, value != NULL ? value : Py_None};

        call[2] = PyLong_FromSsize_t(end);
        call[3] = PyLong_FromLong(outcome);
        if (data != NULL && call[2] != NULL && call[3] != NULL) {
            result = PyObject_VectorcallMethod(read_names[R_ANSWERED_READ], call,
                                               5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        }
        Py_XDECREF(data);
        Py_XDECREF(call[2]);
        Py_XDECREF(call[3]);
    }
done:
    Py_XDECREF(value);
    Py_XDECREF(handler);
    Py_XDECREF(environ);
    Py_DECREF(out);
    return result;
}

static PyObject *
server_buffer_updated(PyObject *shell, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *connection, *receiver, *view_obj, *result;
    Py_ssize_t len;
    int test;

    if (nargs != 1) {
        PyErr_Format(PyExc_TypeError, "buffer_updated() takes 1 argument (%zd given)", nargs);
        return NULL;
    }
    len = PyLong_AsSsize_t(args[0]);
    if (len == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* Lingering until the peer's EOF (or not started): nothing is processed now. */
    if ((test = attr_is(shell, R_STAGE, read_stage_open)) == 0) {
        Py_RETURN_NONE;
    }
    /* Handling suspended, no handler, or answering off: the reference's read. */
    if (test < 0 || (test = attr_is(shell, R_TASK, Py_None)) != 1 ||
        (test = attr_true(shell, R_ANSWER_READS)) != 1 ||
        (test = attr_is(shell, R_HANDLER, Py_None)) != 0) {
        return read_by_reference(shell, args[0]);
    }
    connection = get_attr(shell, R_CONNECTION);
    receiver = connection == NULL ? NULL : get_attr(shell, R_GET_BUFFER);
    view_obj = receiver == NULL ? NULL : get_attr(receiver, R_VIEW);
    Py_XDECREF(receiver);
    if (view_obj == NULL) {
        Py_XDECREF(connection);
        return read_by_reference(shell, args[0]);
    }
    result = answer_read(shell, connection, view_obj, len, args[0]);
    Py_DECREF(view_obj);
    Py_DECREF(connection);
    return result;
}

static PyMethodDef server_buffer_updated_def = {
    "buffer_updated", (PyCFunction)(void (*)(void))server_buffer_updated, METH_FASTCALL,
    "buffer_updated(nbytes, /)\n--\n\n"
    "The server's read, compiled: rfc6455.shell.Shell.buffer_updated's answering path.",
};

PyDoc_STRVAR(server_read_doc,
"server_read(cls, stage_open, state_open, reference, /) -> method descriptor\n"
"--\n"
"\n"
"A compiled buffer_updated for cls, a subclass of rfc6455.shell.Shell: a read that\n"
"connection.receive_answering answers whole is answered and written here; any other read\n"
"goes to reference (the Python buffer_updated) or, after the pass, to\n"
"shell._answered_read(data, end, outcome, value). stage_open and state_open are\n"
"Stage.OPEN and State.OPEN.");

static PyObject *
speedups_server_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "server_read() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyType_Check(args[0]) || !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "server_read() takes a class and a function");
        return NULL;
    }
    Py_XSETREF(read_stage_open, Py_NewRef(args[1]));
    Py_XSETREF(read_state_open, Py_NewRef(args[2]));
    Py_XSETREF(read_reference, Py_NewRef(args[3]));
    return PyDescr_NewMethod((PyTypeObject *)args[0], &server_buffer_updated_def);
}

/* -- The receive buffer: rfc6455.readbuffer.ReceiveBuffer's twin -------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *view;
    vectorcallfunc vectorcall;
} ReceiveBuffer;

static PyObject *
receive_buffer_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    (void)args;
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "get_buffer() takes one size hint");
        return NULL;
    }
    return Py_NewRef(((ReceiveBuffer *)self)->view);
}

static PyObject *
receive_buffer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *view;
    ReceiveBuffer *self;

    if (kwargs != NULL && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "ReceiveBuffer() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "O!:ReceiveBuffer", &PyMemoryView_Type, &view)) {
        return NULL;
    }
    self = (ReceiveBuffer *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->view = Py_NewRef(view);
        self->vectorcall = receive_buffer_call;
    }
    return (PyObject *)self;
}

static void
receive_buffer_dealloc(PyObject *self)
{
    Py_CLEAR(((ReceiveBuffer *)self)->view);
    Py_TYPE(self)->tp_free(self);
}

static PyMemberDef receive_buffer_members[] = {
    {"view", T_OBJECT_EX, offsetof(ReceiveBuffer, view), READONLY,
     "The buffer the transport reads into."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject ReceiveBuffer_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "rfc6455._speedups.ReceiveBuffer",
    .tp_basicsize = sizeof(ReceiveBuffer),
    .tp_dealloc = receive_buffer_dealloc,
    .tp_vectorcall_offset = offsetof(ReceiveBuffer, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = PyDoc_STR("ReceiveBuffer(view): a protocol's get_buffer as an object, called "
                        "with any size hint it gives view (rfc6455.readbuffer)."),
    .tp_members = receive_buffer_members,
    .tp_new = receive_buffer_new,
};

static PyMethodDef speedups_methods[] = {
    {"mask", (PyCFunction)(void (*)(void))speedups_mask, METH_FASTCALL, mask_doc},
    {"mask_slice", (PyCFunction)(void (*)(void))speedups_mask_slice, METH_FASTCALL,
     mask_slice_doc},
    {"read_header", (PyCFunction)(void (*)(void))speedups_read_header, METH_FASTCALL,
     read_header_doc},
    {"parse_frames", (PyCFunction)(void (*)(void))speedups_parse_frames, METH_FASTCALL,
     parse_frames_doc},
    {"parse_messages", (PyCFunction)(void (*)(void))speedups_parse_messages, METH_FASTCALL,
     parse_messages_doc},
    {"wire_frame", (PyCFunction)(void (*)(void))speedups_wire_frame, METH_FASTCALL,
     wire_frame_doc},
    {"answer_messages", (PyCFunction)(void (*)(void))speedups_answer_messages, METH_FASTCALL,
     answer_messages_doc},
    {"utf8_check", (PyCFunction)(void (*)(void))speedups_utf8_check, METH_FASTCALL,
     utf8_check_doc},
    {"server_read", (PyCFunction)(void (*)(void))speedups_server_read, METH_FASTCALL,
     server_read_doc},
    {NULL, NULL, 0, NULL},
};

static int
speedups_exec(PyObject *module)
{
    for (int i = 0; i < R_NAMES; i++) {
        if (read_names[i] == NULL &&
            (read_names[i] = PyUnicode_InternFromString(read_name_text[i])) == NULL) {
            return -1;
        }
    }
    if (PyType_Ready(&ReceiveBuffer_Type) < 0) {
        return -1;
    }
    return PyModule_AddObjectRef(module, "ReceiveBuffer", (PyObject *)&ReceiveBuffer_Type);
}

static struct PyModuleDef_Slot speedups_slots[] = {
    {Py_mod_exec, speedups_exec},
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rfc6455._speedups",
    .m_doc = "Compiled twins of rfc6455.frame's masking and frame parsing functions "
             "(RFC 6455 \xc2\xa7" "5.2, \xc2\xa7" "5.3) and of rfc6455.utf8's validator "
             "(\xc2\xa7" "8.1).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (on_message_name == NULL) {
        on_message_name = PyUnicode_InternFromString("on_message");
        if (on_message_name == NULL) {
            return NULL;
        }
    }
    return PyModuleDef_Init(&speedups_module);
}
