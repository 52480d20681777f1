/* rfc6455._speedups: the compiled accelerator for the codec's hot path.
 *
 * Invariants:
 * - Optional. Every function here has a pure-Python twin in rfc6455.frame that gives the same
 *   result for every input; rfc6455.speedups picks this module when it imports and the
 *   environment does not set RFC6455_NO_SPEEDUPS=1. Differential Hypothesis tests
 *   (fuzz/test_speedups_properties.py) hold the two to the same answers.
 * - No state, no threads, the GIL is held throughout: the work per call is a linear pass.
 * - Inputs are anything that exposes the buffer protocol (bytes, bytearray, memoryview,
 *   array); the output is always a new bytes object.
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

static PyObject *
masked_copy(PyObject *data, PyObject *key_obj, Py_ssize_t start, Py_ssize_t end, int sliced)
{
    Py_buffer data_view, key_view;
    PyObject *data_holder, *key_holder, *result = NULL;
    unsigned char key[4];

    if (get_contiguous(key_obj, &key_view, &key_holder) != 0) {
        return NULL;
    }
    if (key_view.len != 4) {
        PyBuffer_Release(&key_view);
        Py_XDECREF(key_holder);
        PyErr_SetString(PyExc_ValueError, "a masking key is exactly 4 bytes");
        return NULL;
    }
    memcpy(key, key_view.buf, 4);
    PyBuffer_Release(&key_view);
    Py_XDECREF(key_holder);

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

static PyMethodDef speedups_methods[] = {
    {"mask", (PyCFunction)(void (*)(void))speedups_mask, METH_FASTCALL, mask_doc},
    {"mask_slice", (PyCFunction)(void (*)(void))speedups_mask_slice, METH_FASTCALL,
     mask_slice_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef_Slot speedups_slots[] = {
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "rfc6455._speedups",
    .m_doc = "Compiled twins of rfc6455.frame's masking functions (RFC 6455 \xc2\xa7" "5.3).",
    .m_size = 0,
    .m_methods = speedups_methods,
    .m_slots = speedups_slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
