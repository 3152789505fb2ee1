#include <cblas.h>

/* LAPACK's symmetric eigensolver, which OpenBLAS exports (Fortran calling convention: every
   argument by pointer, matrices column-major). Declared here because bookworm's OpenBLAS
   headers ship no LAPACK prototypes. */
void ssyev_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
            float *work, const int *lwork, int *info);
