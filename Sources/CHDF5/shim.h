#include <hdf5.h>
// HDF5 exposes these as macros (often calling H5open), which Swift cannot import.
static inline hid_t mdq_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t mdq_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t mdq_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t mdq_H5T_C_S1(void) { return H5T_C_S1; }
static inline unsigned mdq_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned mdq_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline hid_t mdq_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t mdq_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t mdq_H5S_ALL(void) { return H5S_ALL; }
static inline size_t mdq_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline void mdq_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
