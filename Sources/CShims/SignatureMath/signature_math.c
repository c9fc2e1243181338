/* See dgrid_signature_math.h. nettle's ECDSA and RSA take GMP integers. */
#include "dgrid_signature_math.h"

#include <gmp.h>
#include <nettle/bignum.h>
#include <nettle/ecc-curve.h>
#include <nettle/ecc.h>
#include <nettle/ecdsa.h>
#include <nettle/rsa.h>

int dgrid_ecdsa_p256_verify(const uint8_t *x, size_t x_len, const uint8_t *y, size_t y_len,
                            const uint8_t *digest, size_t digest_len,
                            const uint8_t *r, size_t r_len, const uint8_t *s, size_t s_len) {
    mpz_t mx, my;
    mpz_init(mx);
    mpz_init(my);
    nettle_mpz_set_str_256_u(mx, x_len, x);
    nettle_mpz_set_str_256_u(my, y_len, y);
    struct ecc_point point;
    ecc_point_init(&point, nettle_get_secp_256r1());
    int result = -1;
    /* ecc_point_set checks the point is on the curve. */
    if (ecc_point_set(&point, mx, my)) {
        struct dsa_signature signature;
        dsa_signature_init(&signature);
        nettle_mpz_set_str_256_u(signature.r, r_len, r);
        nettle_mpz_set_str_256_u(signature.s, s_len, s);
        result = ecdsa_verify(&point, digest_len, digest, &signature) ? 1 : 0;
        dsa_signature_clear(&signature);
    }
    ecc_point_clear(&point);
    mpz_clear(mx);
    mpz_clear(my);
    return result;
}

int dgrid_rsa_pkcs1_verify(const uint8_t *n, size_t n_len, const uint8_t *e, size_t e_len,
                           const uint8_t *digest, size_t digest_len,
                           const uint8_t *signature, size_t signature_len, unsigned min_bits) {
    if (digest_len != 32 && digest_len != 64)
        return -1;
    struct rsa_public_key key;
    rsa_public_key_init(&key);
    nettle_mpz_set_str_256_u(key.n, n_len, n);
    nettle_mpz_set_str_256_u(key.e, e_len, e);
    int result = -1;
    if (mpz_sizeinbase(key.n, 2) >= min_bits && mpz_odd_p(key.n) && rsa_public_key_prepare(&key)) {
        mpz_t s;
        mpz_init(s);
        nettle_mpz_set_str_256_u(s, signature_len, signature);
        /* The signature is as long as the modulus (RFC 8332); a longer one is invalid. */
        if (signature_len <= key.size)
            result = (digest_len == 32 ? rsa_sha256_verify_digest(&key, digest, s)
                                       : rsa_sha512_verify_digest(&key, digest, s)) ? 1 : 0;
        else
            result = 0;
        mpz_clear(s);
    }
    rsa_public_key_clear(&key);
    return result;
}
