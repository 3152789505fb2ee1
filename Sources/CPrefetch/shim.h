#ifndef FEEDRANK_CPREFETCH_SHIM_H
#define FEEDRANK_CPREFETCH_SHIM_H

/* A cache-line prefetch hint, for the ranking's exact scores: Swift cannot import
   _mm_prefetch (a macro). Header-only; nothing to link. */
static inline void feedrank_prefetch(const void *p) {
    __builtin_prefetch(p, 0, 3);
}

#endif
