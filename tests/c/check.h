/*
 * check.h: a tiny, header-only test harness for the zk-states C tests.
 *
 *   CHECK(cond)            the condition holds
 *   CHECK_EQ_INT(a, b)     a == b, compared as intmax_t (prints both values)
 *   CHECK_EQ_UINT(a, b)    a == b, compared as uintmax_t
 *   CHECK_STR(a, b)        C strings equal (two NULLs are equal, one NULL is not)
 *   CHECK_MEM(a, b, n)     n bytes equal
 *   check_summary(name)    prints "<name>: N passed, M failed" and returns the
 *                          process exit status (nonzero on any failure, or if
 *                          no check ran at all)
 *
 * Every macro evaluates its arguments exactly once and yields 1 when the check
 * passed, 0 when it failed, so a test can stop early: `if (!CHECK(p)) return;`.
 * Counters are updated atomically, so checks may run on any thread (dispatcher
 * callbacks run on the dispatch thread). C99 and C++ clean.
 */
#ifndef ZK_TEST_CHECK_H
#define ZK_TEST_CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Failures printed in full; later ones are only counted. */
#define CHECK_MAX_PRINTED 200

static unsigned long check_passed_count_ = 0;
static unsigned long check_failed_count_ = 0;
/* Free-form context printed with a failure (e.g. the loop index), or NULL. */
static const char *check_context_ = NULL;

static inline void check_set_context(const char *ctx) { check_context_ = ctx; }

static inline int check_fail_begin_(const char *file, int line, const char *expr)
{
    unsigned long n = __atomic_add_fetch(&check_failed_count_, 1UL, __ATOMIC_SEQ_CST);
    if (n > CHECK_MAX_PRINTED) {
        return 0;
    }
    fprintf(stderr, "%s:%d: CHECK FAILED: %s", file, line, expr);
    if (check_context_ != NULL) {
        fprintf(stderr, " [%s]", check_context_);
    }
    return 1;
}

static inline int check_pass_(void)
{
    __atomic_add_fetch(&check_passed_count_, 1UL, __ATOMIC_SEQ_CST);
    return 1;
}

static inline int check_bool_(int ok, const char *file, int line, const char *expr)
{
    if (ok) {
        return check_pass_();
    }
    if (check_fail_begin_(file, line, expr)) {
        fputc('\n', stderr);
    }
    return 0;
}

static inline int check_eq_int_(intmax_t a, intmax_t b, const char *file, int line,
                                const char *ea, const char *eb)
{
    if (a == b) {
        return check_pass_();
    }
    if (check_fail_begin_(file, line, "==")) {
        fprintf(stderr, ": %s == %s: %" PRIdMAX " != %" PRIdMAX "\n", ea, eb, a, b);
    }
    return 0;
}

static inline int check_eq_uint_(uintmax_t a, uintmax_t b, const char *file, int line,
                                 const char *ea, const char *eb)
{
    if (a == b) {
        return check_pass_();
    }
    if (check_fail_begin_(file, line, "==")) {
        fprintf(stderr, ": %s == %s: %" PRIuMAX " != %" PRIuMAX "\n", ea, eb, a, b);
    }
    return 0;
}

static inline int check_str_(const char *a, const char *b, const char *file, int line,
                             const char *ea, const char *eb)
{
    int ok = (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
    if (ok) {
        return check_pass_();
    }
    if (check_fail_begin_(file, line, "string equality")) {
        fprintf(stderr, ": %s == %s: ", ea, eb);
        if (a != NULL) {
            fprintf(stderr, "\"%s\"", a);
        } else {
            fputs("NULL", stderr);
        }
        fputs(" != ", stderr);
        if (b != NULL) {
            fprintf(stderr, "\"%s\"", b);
        } else {
            fputs("NULL", stderr);
        }
        fputc('\n', stderr);
    }
    return 0;
}

static inline int check_mem_(const void *a, const void *b, size_t n, const char *file, int line,
                             const char *ea, const char *eb)
{
    const unsigned char *pa = (const unsigned char *)a;
    const unsigned char *pb = (const unsigned char *)b;
    size_t i;
    for (i = 0; i < n; i++) {
        if (pa[i] != pb[i]) {
            break;
        }
    }
    if (i == n) {
        return check_pass_();
    }
    if (check_fail_begin_(file, line, "memory equality")) {
        fprintf(stderr, ": %s vs %s (%lu bytes): first difference at byte %lu: 0x%02x != 0x%02x\n",
                ea, eb, (unsigned long)n, (unsigned long)i, pa[i], pb[i]);
    }
    return 0;
}

#define CHECK(cond) check_bool_((cond) ? 1 : 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ_INT(a, b) \
    check_eq_int_((intmax_t)(a), (intmax_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_EQ_UINT(a, b) \
    check_eq_uint_((uintmax_t)(a), (uintmax_t)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR(a, b) check_str_((a), (b), __FILE__, __LINE__, #a, #b)
#define CHECK_MEM(a, b, n) check_mem_((a), (b), (n), __FILE__, __LINE__, #a, #b)

static inline unsigned long check_passed(void)
{
    return __atomic_load_n(&check_passed_count_, __ATOMIC_SEQ_CST);
}

static inline unsigned long check_failed(void)
{
    return __atomic_load_n(&check_failed_count_, __ATOMIC_SEQ_CST);
}

/* Prints the summary line and returns the exit status for main(). */
static inline int check_summary(const char *name)
{
    unsigned long passed = check_passed();
    unsigned long failed = check_failed();
    printf("%s: %lu passed, %lu failed\n", name, passed, failed);
    if (failed > CHECK_MAX_PRINTED) {
        printf("%s: (only the first %d failures were printed)\n", name, CHECK_MAX_PRINTED);
    }
    fflush(stdout);
    fflush(stderr);
    if (passed == 0 && failed == 0) {
        printf("%s: no check ran: treating as a failure\n", name);
        return 1;
    }
    return failed == 0 ? 0 : 1;
}

#endif /* ZK_TEST_CHECK_H */
