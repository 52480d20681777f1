/* wsconform.native._masking: the engine's frame masking, compiled.
 *
 * Invariants:
 * - Optional: wsconform.native.frames masks in Python when this module is missing, with the
 *   same result for every input (conformance/tests/native/test_frames.py holds the two to
 *   it). It is the engine's own: the judge imports nothing from the implementation it judges.
 * - One call masks a whole message cut into frames: frame f covers octets
 *   [f * fragment, (f + 1) * fragment) of the payload and is masked with key f (octets
 *   4f..4f+3 of keys), its masking restarting at key octet 0 (RFC 6455 §5.3: octet i of a
 *   frame's payload is XORed with octet i MOD 4 of its key).
 * - encode_message writes a whole fragmented message, headers and keys included, exactly as
 *   frames.encode_message's Python paths do (the same test holds them equal): the shortest
 *   length encoding, frames of `fragment` octets and a last one with the rest (empty when
 *   the size is a multiple), the first byte's opcode and RSV on the first frame only, FIN
 *   on the last only.
 * - No state, the GIL held throughout, one linear pass; the result is a new bytes object.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* One frame: n octets of in, XORed with key from key octet 0, into out. Eight octets at a
 * time with the key twice in a word (8 is a multiple of 4), then the rest one by one. */
static void
xor_frame(unsigned char *out, const unsigned char *in, Py_ssize_t n, const unsigned char *key)
{
    unsigned char twice[8];
    uint64_t word, chunk;
    Py_ssize_t at = 0;

    memcpy(twice, key, 4);
    memcpy(twice + 4, key, 4);
    memcpy(&word, twice, 8);
    for (; at + 8 <= n; at += 8) {
        memcpy(&chunk, in + at, 8);
        chunk ^= word;
        memcpy(out + at, &chunk, 8);
    }
    for (; at < n; at++) {
        out[at] = in[at] ^ key[at & 3];
    }
}

PyDoc_STRVAR(mask_doc,
"mask(payload, keys, fragment) -> bytes\n\n"
"payload masked frame by frame: frame f is octets f*fragment up to (f+1)*fragment, masked\n"
"with the 4-octet key f of keys (as many keys as frames, or more).");

static PyObject *
mask(PyObject *module, PyObject *args)
{
    Py_buffer payload, keys;
    Py_ssize_t fragment, frames, at, f;
    PyObject *result = NULL;
    unsigned char *out;

    (void)module;
    if (!PyArg_ParseTuple(args, "y*y*n:mask", &payload, &keys, &fragment)) {
        return NULL;
    }
    if (fragment <= 0) {
        PyErr_SetString(PyExc_ValueError, "fragment must be positive");
        goto done;
    }
    frames = payload.len / fragment + (payload.len % fragment != 0);
    if (keys.len % 4 != 0 || keys.len / 4 < frames) {
        PyErr_Format(PyExc_ValueError, "%zd octets of keys for %zd frames", keys.len, frames);
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, payload.len);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    for (f = 0, at = 0; at < payload.len; f++, at += fragment) {
        Py_ssize_t size = payload.len - at < fragment ? payload.len - at : fragment;
        xor_frame(out + at, (const unsigned char *)payload.buf + at, size,
                  (const unsigned char *)keys.buf + 4 * f);
    }
done:
    PyBuffer_Release(&payload);
    PyBuffer_Release(&keys);
    return result;
}

/* The header of a masked frame of n payload octets (first byte given); its length. */
static Py_ssize_t
put_header(unsigned char *out, unsigned char first, Py_ssize_t n)
{
    int i;

    out[0] = first;
    if (n <= 125) {
        out[1] = 0x80 | (unsigned char)n;
        return 2;
    }
    if (n <= 0xFFFF) {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        return 4;
    }
    out[1] = 0x80 | 127;
    for (i = 0; i < 8; i++) {
        out[2 + i] = (unsigned char)((unsigned long long)n >> (56 - 8 * i));
    }
    return 10;
}

static Py_ssize_t
header_size(Py_ssize_t n)
{
    return n <= 125 ? 2 : n <= 0xFFFF ? 4 : 10;
}

PyDoc_STRVAR(encode_message_doc,
"encode_message(payload, keys, fragment, first) -> bytes\n\n"
"Every frame of one message, masked: one frame when the payload fits in fragment octets\n"
"(or fragment is 0), else frames of fragment octets and a last one with the rest; frame\n"
"f masked with key f of keys; first (opcode and RSV bits) on the first frame, FIN on the\n"
"last.");

static PyObject *
encode_message(PyObject *module, PyObject *args)
{
    Py_buffer payload, keys;
    Py_ssize_t fragment, frames, full, rest, total, f, at;
    int first;
    PyObject *result = NULL;
    unsigned char *out;
    const unsigned char *in, *key;

    (void)module;
    if (!PyArg_ParseTuple(args, "y*y*ni:encode_message", &payload, &keys, &fragment, &first)) {
        return NULL;
    }
    if (fragment < 0 || first < 0 || first > 0x7F) {
        PyErr_SetString(PyExc_ValueError, "fragment must be >= 0 and first in 0..127");
        goto done;
    }
    if (fragment == 0 || payload.len <= fragment) {
        full = 0;
        rest = payload.len;
    } else {
        full = payload.len / fragment;
        rest = payload.len - full * fragment;
    }
    frames = full + 1;
    if (keys.len % 4 != 0 || keys.len / 4 < frames) {
        PyErr_Format(PyExc_ValueError, "%zd octets of keys for %zd frames", keys.len, frames);
        goto done;
    }
    total = payload.len + frames * 4 + full * header_size(fragment) + header_size(rest);
    result = PyBytes_FromStringAndSize(NULL, total);
    if (result == NULL) {
        goto done;
    }
    out = (unsigned char *)PyBytes_AS_STRING(result);
    in = (const unsigned char *)payload.buf;
    for (f = 0, at = 0; f < frames; f++) {
        Py_ssize_t size = f < full ? fragment : rest;
        unsigned char byte = (unsigned char)((f == 0 ? first : 0) | (f == full ? 0x80 : 0));

        key = (const unsigned char *)keys.buf + 4 * f;
        out += put_header(out, byte, size);
        memcpy(out, key, 4);
        out += 4;
        xor_frame(out, in + at, size, key);
        out += size;
        at += size;
    }
done:
    PyBuffer_Release(&payload);
    PyBuffer_Release(&keys);
    return result;
}

static PyMethodDef methods[] = {
    {"mask", mask, METH_VARARGS, mask_doc},
    {"encode_message", encode_message, METH_VARARGS, encode_message_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wsconform.native._masking",
    .m_doc = "The native engine's frame masking, compiled (optional).",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__masking(void)
{
    return PyModuleDef_Init(&module_def);
}
