/* rfc6455._speedups: the compiled accelerator for the codec's hot path.
 *
 * Invariants:
 * - Optional. Every function here has a pure-Python twin in rfc6455.frame that gives the same
 *   result for every input (read_header returns False where its twin raises the protocol
 *   error, parse_frames stops there with refused set: the parser then asks the Python
 *   read_header for the error, so one function decides which error wins); rfc6455.speedups
 *   picks this module when it imports and the environment does not set
 *   RFC6455_NO_SPEEDUPS=1. Differential Hypothesis
 *   tests (fuzz/test_speedups_properties.py) hold the two to the same answers (wire_frame,
 *   which only our own code calls, may refuse a call with several wrong arguments with
 *   another of the exception types its twin might raise).
 * - No state, no threads, the GIL is held throughout: the work per call is a linear pass.
 * - Inputs are anything that exposes the buffer protocol (bytes, bytearray, memoryview,
 *   array); masking returns a new bytes object.
 *
 * RFC 6455 §5.3: octet i of the transformed data is octet i of the original data XOR octet
 * (i MOD 4) of the masking key. Eight octets at a time is the same thing with the key
 * repeated twice in a 64-bit word, since 8 is a multiple of 4.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

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

/* Opcodes RFC 6455 §5.2 defines: continuation, text, binary, close, ping, pong. */
#define KNOWN_OPCODES ((1u << 0x0) | (1u << 0x1) | (1u << 0x2) | (1u << 0x8) | (1u << 0x9) | (1u << 0xA))

/* The arguments every header check needs, converted once per call. */
typedef struct {
    int expect_masked;
    int has_limit;
    long long limit;
    long rsv_mask;
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

/* Convert (buffer, pos, expect_masked, max_frame_size, rsv_mask): on success the buffer is
 * held in *view and the caller releases it. */
static int
parse_arguments(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_buffer *view,
                Py_ssize_t *pos, header_rules *rules)
{
    int overflow = 0;

    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "%s() takes 5 arguments (%zd given)", name, nargs);
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
    if (parse_arguments("read_header", args, nargs, &view, &pos, &rules) < 0) {
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
"parse_frames(buffer, pos, expect_masked, max_frame_size, rsv_mask, /)\n"
"--\n"
"\n"
"Every complete frame from buffer[pos:] in one pass (RFC 6455 \xc2\xa7" "5.2), as\n"
"(items, end, refused): items is flat, first byte then unmasked payload for each frame;\n"
"end is where the first frame not returned starts; refused is True when that frame's\n"
"header is one the pure-Python read_header raises for (the caller asks it why).");

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
    if (parse_arguments("parse_frames", args, nargs, &view, &pos, &rules) < 0) {
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
        payload = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)header.length);
        if (first == NULL || payload == NULL) {
            goto error;
        }
        if (header.key != NULL) {
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

PyDoc_STRVAR(wire_frame_doc,
"wire_frame(first, payload, masking_key, /) -> bytes\n"
"--\n"
"\n"
"One frame's wire bytes (RFC 6455 \xc2\xa7" "5.2) in one allocation: the first header byte\n"
"as given, the payload length in the fewest bytes, then the masking key and the masked\n"
"payload (\xc2\xa7" "5.3), or the payload as it is when masking_key is None.");

static PyObject *
speedups_wire_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer payload_view;
    PyObject *payload_holder, *result;
    unsigned char key[4], *out;
    Py_ssize_t length, header_size;
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
            goto fail;
        }
        PyErr_Clear();
        first = -1; /* out of range, as below */
    }
    if (first < 0 || first > 0xFF) {
        PyErr_SetString(PyExc_ValueError, "a first header byte is 0-255");
        goto fail;
    }
    masked = args[2] != Py_None;
    if (masked && read_key(args[2], key) != 0) {
        goto fail;
    }
    length = payload_view.len;
    /* §5.2: "the minimal number of bytes MUST be used to encode the length". */
    header_size = length < 126 ? 2 : length < 0x10000 ? 4 : 10;
    result = PyBytes_FromStringAndSize(NULL, header_size + (masked ? 4 : 0) + length);
    if (result != NULL) {
        out = (unsigned char *)PyBytes_AS_STRING(result);
        out[0] = (unsigned char)first;
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
        if (masked) {
            out[1] |= 0x80;
            memcpy(out + header_size, key, 4);
            mask_bytes(out + header_size + 4, (const unsigned char *)payload_view.buf, length,
                       key);
        }
        else if (length) {
            memcpy(out + header_size, payload_view.buf, (size_t)length);
        }
    }
    PyBuffer_Release(&payload_view);
    Py_XDECREF(payload_holder);
    return result;

fail:
    PyBuffer_Release(&payload_view);
    Py_XDECREF(payload_holder);
    return NULL;
}

static PyMethodDef speedups_methods[] = {
    {"mask", (PyCFunction)(void (*)(void))speedups_mask, METH_FASTCALL, mask_doc},
    {"mask_slice", (PyCFunction)(void (*)(void))speedups_mask_slice, METH_FASTCALL,
     mask_slice_doc},
    {"read_header", (PyCFunction)(void (*)(void))speedups_read_header, METH_FASTCALL,
     read_header_doc},
    {"parse_frames", (PyCFunction)(void (*)(void))speedups_parse_frames, METH_FASTCALL,
     parse_frames_doc},
    {"wire_frame", (PyCFunction)(void (*)(void))speedups_wire_frame, METH_FASTCALL,
     wire_frame_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef_Slot speedups_slots[] = {
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rfc6455._speedups",
    .m_doc = "Compiled twins of rfc6455.frame's masking and frame header functions "
             "(RFC 6455 \xc2\xa7" "5.2, \xc2\xa7" "5.3).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
