/* The public-key checks behind dgrid's SSH signatures (Sources/Trust) that
 * need GMP numbers, kept in C so Swift never handles an mpz_t. Each returns
 * 1 when the signature is valid, 0 when it is not, -1 when the key itself is
 * unusable (not on the curve, an even or tiny modulus). Inputs are unsigned
 * big-endian byte strings, any leading zero bytes allowed. */
#ifndef DGRID_SIGNATURE_MATH_H
#define DGRID_SIGNATURE_MATH_H

#include <stddef.h>
#include <stdint.h>

/* ECDSA over NIST P-256: the point (x, y), a SHA-256 digest, and (r, s). */
int dgrid_ecdsa_p256_verify(const uint8_t *x, size_t x_len, const uint8_t *y, size_t y_len,
                            const uint8_t *digest, size_t digest_len,
                            const uint8_t *r, size_t r_len, const uint8_t *s, size_t s_len);

/* RSA PKCS#1 v1.5 with SHA-256 (digest_len 32) or SHA-512 (digest_len 64).
 * min_bits: moduli shorter than this are refused (-1). */
int dgrid_rsa_pkcs1_verify(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
                           const uint8_t *digest, size_t digest_len,
                           const uint8_t *signature, size_t signature_len, unsigned min_bits);

#endif
