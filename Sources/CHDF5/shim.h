#include <hdf5.h>
#include <stdio.h>
#include <string.h>
// HDF5 exposes these as macros (often calling H5open), which Swift cannot import.
static inline hid_t mdq_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t mdq_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t mdq_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t mdq_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t mdq_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t mdq_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t mdq_H5T_C_S1(void) { return H5T_C_S1; }
static inline unsigned mdq_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned mdq_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned mdq_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline hid_t mdq_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t mdq_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t mdq_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t mdq_H5S_ALL(void) { return H5S_ALL; }
static inline hsize_t mdq_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline size_t mdq_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline H5T_str_t mdq_H5T_STR_NULLTERM(void) { return H5T_STR_NULLTERM; }
static inline H5T_cset_t mdq_H5T_CSET_UTF8(void) { return H5T_CSET_UTF8; }
static inline void mdq_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// Frees the strings HDF5 allocated while reading variable-length data
// (H5Dvlen_reclaim was renamed H5Treclaim in 1.12).
static inline herr_t mdq_H5_reclaim(hid_t type, hid_t space, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}

// A 16-byte identity of an object within its file (its object-header address, a token since
// 1.12), so a walk through groups can visit each group once even when hard links form a cycle.
static inline herr_t mdq_H5_object_identity(hid_t obj, unsigned char out[16]) {
    memset(out, 0, 16);
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info3(obj, &info, H5O_INFO_BASIC) < 0) return -1;
    memcpy(out, &info.token, sizeof info.token < 16 ? sizeof info.token : 16);
#else
    H5O_info_t info;
    if (H5Oget_info2(obj, &info, H5O_INFO_BASIC) < 0) return -1;
    memcpy(out, &info.addr, sizeof info.addr);
#endif
    return 0;
}

// Copies the most specific and the API-level descriptions of the current error stack into `out`
// ("unable to open file: file signature not found"), so thrown Swift errors say why.
typedef struct { char *out; size_t cap; unsigned count; char first[256]; char last[256]; } mdq_H5_err_walk;
static inline herr_t mdq_H5_err_walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
    mdq_H5_err_walk *w = (mdq_H5_err_walk *)data;
    const char *d = (e && e->desc) ? e->desc : "";
    if (w->count == 0) { strncpy(w->first, d, sizeof w->first - 1); w->first[sizeof w->first - 1] = 0; }
    strncpy(w->last, d, sizeof w->last - 1); w->last[sizeof w->last - 1] = 0;
    w->count++;
    (void)n;
    return 0;
}
static inline void mdq_H5_last_error(char *out, size_t cap) {
    mdq_H5_err_walk w;
    memset(&w, 0, sizeof w);
    if (cap == 0) return;
    out[0] = 0;
    // Downward: the API function's message first, the innermost cause last.
    if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, mdq_H5_err_walk_cb, &w) < 0 || w.count == 0) return;
    if (w.count == 1 || strcmp(w.first, w.last) == 0) snprintf(out, cap, "%s", w.first);
    else snprintf(out, cap, "%s: %s", w.first, w.last);
}
