/* A prototype, not shipped: SSE framing and the reading of an update's fields in one C pass.
 *
 * `frame(buffer, read, limit)` takes the events in the shape servers write (`event: T`, `id: N`,
 * `data: {...}` each on a line of its own, LF line ends, then a blank line) from the start, each
 * at most `limit` bytes (the decoder's `max_event_bytes`), and
 * hands each event's data to `read` (the exporter's msgspec decoder of `Fields`) without
 * splitting the read into Python lines. It returns `(events, stop)`: a list of
 * `(event, id, data, fields)` tuples, `fields` None when `read` refused the data or the data is
 * not ASCII (those go the whole way in Python), and the offset of the first block it did not
 * take. Anything else (another shape, a comment, CR line ends, NUL in an id, a larger event, an
 * incomplete block) stops it: the caller hands the bytes from `stop` to the exporter's
 * `SSEDecoder`.
 *
 * `bench/prototype.py` builds and measures it; `docs/performance.md` says what it showed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static int is_ascii(const char *p, Py_ssize_t n) {
    const char *end = p + n;
    uint64_t high = 0;
    while (end - p >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        high |= word;
        p += 8;
    }
    while (p < end) {
        high |= (unsigned char)*p++;
    }
    return (high & UINT64_C(0x8080808080808080)) == 0;
}

/* The line starting at `p` after `prefix`: its value's start, and the LF that ends it. */
static const char *line(const char *p, const char *end, const char *prefix, Py_ssize_t size,
                        const char **value) {
    if (end - p < size || memcmp(p, prefix, (size_t)size) != 0) {
        return NULL;
    }
    *value = p + size;
    return memchr(*value, '\n', (size_t)(end - *value));
}

static PyObject *frame(PyObject *module, PyObject *args) {
    Py_buffer view;
    PyObject *read;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "y*On", &view, &read, &limit)) {
        return NULL;
    }
    const char *buffer = view.buf;
    const char *end = buffer + view.len;
    PyObject *events = PyList_New(0);
    if (events == NULL) {
        goto fail;
    }
    const char *at = buffer;
    while (at < end) {
        const char *event, *id, *data;
        const char *event_end = line(at, end, "event: ", 7, &event);
        if (event_end == NULL) {
            break;
        }
        const char *id_end = line(event_end + 1, end, "id: ", 4, &id);
        if (id_end == NULL) {
            break;
        }
        const char *data_end = line(id_end + 1, end, "data: ", 6, &data);
        if (data_end == NULL || data_end + 1 >= end || data_end[1] != '\n') {
            break;
        }
        if (data_end - at > limit || memchr(at, '\r', (size_t)(data_end - at)) != NULL ||
            memchr(id, '\0', (size_t)(id_end - id)) != NULL) {
            break;
        }
        PyObject *item = PyTuple_New(4);
        if (item == NULL) {
            goto fail;
        }
        PyObject *data_bytes = PyBytes_FromStringAndSize(data, data_end - data);
        PyTuple_SET_ITEM(item, 0, PyUnicode_DecodeUTF8(event, event_end - event, "replace"));
        PyTuple_SET_ITEM(item, 1, PyUnicode_DecodeUTF8(id, id_end - id, "replace"));
        PyTuple_SET_ITEM(item, 2, data_bytes);
        if (PyTuple_GET_ITEM(item, 0) == NULL || PyTuple_GET_ITEM(item, 1) == NULL ||
            data_bytes == NULL) {
            Py_DECREF(item);
            goto fail;
        }
        PyObject *fields = NULL;
        if (is_ascii(data, data_end - data)) {
            fields = PyObject_CallOneArg(read, data_bytes);
            if (fields == NULL) {
                if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                    Py_DECREF(item);
                    goto fail;
                }
                PyErr_Clear(); /* not the usual fields: the whole way decides */
            }
        }
        if (fields == NULL) {
            fields = Py_NewRef(Py_None);
        }
        PyTuple_SET_ITEM(item, 3, fields);
        int appended = PyList_Append(events, item);
        Py_DECREF(item);
        if (appended < 0) {
            goto fail;
        }
        at = data_end + 2;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nn)", events, (Py_ssize_t)(at - buffer));
fail:
    Py_XDECREF(events);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"frame", frame, METH_VARARGS, "Frame the usual events of a buffer and read their fields."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, "_frame_prototype", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__frame_prototype(void) { return PyModule_Create(&definition); }
