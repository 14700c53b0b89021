/* pseudo.c — the public pseudonymiser API (see pseudo.h).
 *
 * pseudo_message runs two passes over the MIME tree (collect display names and addresses,
 * then write the output), builds the reid data, and then proves the pair: the reid edits
 * applied to the output must give back the input exactly.  If that ever fails (a bug) or
 * the walk fails on something it cannot handle, the whole message is replaced by a small
 * placeholder that carries no identifiers and the reid data holds the original, so the
 * caller never gets an unverified pair and never loses a byte. */
#include "pseudo/ctx.h"
#include "pseudo/hooks.h"
#include "pseudo/mime.h"
#include "pseudo/reid.h"
#include "pseudo/scan.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

struct pseudo_result {
    pbuf bytes;
    pbuf reid;
    unsigned char orig_sha256[32];  /* as recorded in the reid data */
    struct {
        enum pseudo_kind kind;
        char token[PSEUDO_TOKEN_LEN + 1];
    } *tokens;
    size_t n_tokens;
    size_t n_sealed;
    bool whole;
};

static const char PLACEHOLDER[] =
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "X-Mailret-Pseudonymised: whole-message\r\n"
    "\r\n"
    "This message could not be pseudonymised part by part and was replaced as a whole.\r\n"
    "The original is kept in the re-identification data.\r\n";

/* The state of a session between messages: the key's copy, the policy, and a context
 * whose buffers, arena block and HMAC key schedule are kept from one message to the
 * next, so that a short message does not pay for its buffers and the HMAC's keying. */
struct pseudo_session {
    pseudo_key key;
    struct pseudo_policy pol;
    struct pseudo_ctx ctx;
};

static void ctx_init(struct pseudo_ctx *ctx, const pseudo_key *key,
                     const struct pseudo_policy *pol)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->key = key;
    ctx->pol = pol;
    parena_init(&ctx->arena);
    pnames_init(&ctx->names, &ctx->arena);
    ptokens_init(&ctx->tokens, &ctx->sha, &ctx->arena);
    ctx->addrs.arena = &ctx->arena;
}

/* A buffer kept between messages unless a big message grew it. */
static void keep_small(pbuf *b)
{
    if (b->cap > PBUF_POOL_KEEP)
        pbuf_free(b);
    else
        b->len = 0;
}

/* Between two messages of a session: forget everything the last one taught (names,
 * addresses, tokens, decoded bodies, header blocks), keep the capacity.  The objects in
 * the arena go last, since names, addresses and tokens point into it. */
static void ctx_reset(struct pseudo_ctx *ctx)
{
    pmime_cache_reset(ctx);
    pnames_reset(&ctx->names);
    paddrs_reset(&ctx->addrs);
    ptokens_reset(&ctx->tokens);
    keep_small(&ctx->phrase);
    keep_small(&ctx->addr);
    keep_small(&ctx->comment);
    keep_small(&ctx->utf8);
    for (size_t i = 0; i < ctx->n_dec; i++)
        pscratch_put(ctx, &ctx->dec_cache[i].dec);
    for (size_t i = 0; i < PDEC_CACHE_MAX; i++)
        if (ctx->dec_cache[i].lines.cap * sizeof *ctx->dec_cache[i].lines.v > PBUF_POOL_KEEP)
            pqp_lines_free(&ctx->dec_cache[i].lines);
    ctx->n_dec = 0;
    ctx->dec_bytes = 0;
    ctx->collecting = false;
    ctx->n_sealed = 0;
    ctx->msg = NULL;
    ctx->msg_len = 0;
    ctx->err = NULL;
    parena_reset(&ctx->arena);
}

static void ctx_free(struct pseudo_ctx *ctx)
{
    pscratch_free(ctx);
    pmime_cache_free(ctx);
    pnames_free(&ctx->names);
    paddrs_free(&ctx->addrs);
    ptokens_free(&ctx->tokens);
    psha_free(&ctx->sha);
    pbuf_free(&ctx->phrase);
    pbuf_free(&ctx->addr);
    pbuf_free(&ctx->comment);
    pbuf_free(&ctx->utf8);
    for (size_t i = 0; i < ctx->n_dec; i++)
        pbuf_free(&ctx->dec_cache[i].dec);
    for (size_t i = 0; i < PDEC_CACHE_MAX; i++)
        pqp_lines_free(&ctx->dec_cache[i].lines);
    ctx->n_dec = 0;
    parena_free(&ctx->arena);   /* last: names, addresses and tokens live in it */
}

int pseudo_session_new(const pseudo_key *key, const struct pseudo_policy *policy,
                       pseudo_session **out, mr_error *err)
{
    pseudo_session *s;

    if (key == NULL || policy == NULL || out == NULL)
        return mr_error_set(err, MR_E_INVALID, "pseudo_session_new: bad argument");
    s = malloc(sizeof *s);
    if (s == NULL)
        return mr_error_set(err, MR_E_NOMEM, "out of memory for a pseudonymiser session");
    s->key = *key;
    s->pol = *policy;
    ctx_init(&s->ctx, &s->key, &s->pol);
    *out = s;
    return 0;
}

void pseudo_session_free(pseudo_session *s)
{
    if (s == NULL)
        return;
    ctx_free(&s->ctx);
    OPENSSL_cleanse(&s->key, sizeof s->key);
    free(s);
}

/* The output and edits of the two passes, or an error. */
static int run_passes(struct pseudo_ctx *ctx, const unsigned char *msg, size_t len, pout *out)
{
    pout none;
    int rc;

    pout_init(&none, NULL, 0);
    ctx->collecting = true;
    rc = pmime_entity(ctx, msg, len, 0, false, &none);
    pout_free(&none);
    if (rc == 0)
        rc = pnames_prepare(&ctx->names, ctx->err);
    if (rc != 0)
        return rc;
    ctx->collecting = false;
    ctx->n_sealed = 0;
    size_t known = ctx->names.n_canon;
    rc = pmime_entity(ctx, msg, len, 0, false, out);
    if (rc != 0 || ctx->names.n_canon == known)
        return rc;
    /* Names learnt from salutations and signatures may occur earlier in the message
     * (subject, file names): one more pass with everything learnt. */
    pout_free(out);
    pout_init(out, msg, len);
    ptokens_reset_list(&ctx->tokens);
    ctx->n_sealed = 0;
    return pmime_entity(ctx, msg, len, 0, false, out);
}

/* restore(out) == msg, checked without building the restored copy: the output between
 * edits must equal the message at the same place, and the edits' original spans must
 * tile the rest of the message in order.  Equivalent to pedits_apply + memcmp. */
static bool verified(const pout *out, const unsigned char *msg, size_t len)
{
    size_t pos_out = 0, pos_in = 0, seg;

    for (size_t i = 0; i < out->n_edits; i++) {
        const struct pedit *e = &out->edits[i];
        if (e->out_off < pos_out || e->out_off > out->buf.len ||
            e->out_len > out->buf.len - e->out_off)
            return false;
        seg = e->out_off - pos_out;
        if (seg > len - pos_in || (seg > 0 && memcmp(out->buf.p + pos_out, msg + pos_in, seg) != 0))
            return false;
        pos_in += seg;
        if (e->orig_off != pos_in || e->orig_len > len - pos_in)
            return false;
        pos_in += e->orig_len;
        pos_out = e->out_off + e->out_len;
    }
    seg = out->buf.len - pos_out;
    return seg == len - pos_in &&
           (seg == 0 || memcmp(out->buf.p + pos_out, msg + pos_in, seg) == 0);
}

static int whole_replacement(pout *out, const unsigned char *msg, size_t len, mr_error *err)
{
    pout_free(out);
    pout_init(out, msg, len);
    return pout_replace(out, msg, len, (const unsigned char *)PLACEHOLDER,
                        sizeof PLACEHOLDER - 1, err);
}

/* One message in a context that is clean (new or reset) and reset again on return,
 * whatever happened. */
static int session_run(struct pseudo_ctx *ctx, const unsigned char *msg, size_t len,
                       unsigned test_flags, pseudo_result **out, mr_error *err)
{
    pseudo_result *res;
    pout o;
    bool whole = false;
    int rc;

    ctx->msg = msg;
    ctx->msg_len = len;
    ctx->err = err;
    pout_init(&o, msg, len);
    rc = pbuf_reserve(&o.buf, len + len / 16 + 64, err);
    if (rc == 0)
        rc = run_passes(ctx, msg, len, &o);
    if (rc == MR_E_NOMEM) {
        pout_free(&o);
        ctx_reset(ctx);
        return rc;
    }
    if (rc != 0 || (test_flags & PSEUDO_TEST_FORCE_WHOLE) || !verified(&o, msg, len)) {
        /* A walk error or a failed self-check: never hand out an unverified pair. */
        whole = true;
        rc = whole_replacement(&o, msg, len, err);
        if (rc == 0 && !verified(&o, msg, len))
            rc = mr_error_set(err, MR_E_INTERNAL, "pseudonymiser fallback does not verify");
        if (rc != 0) {
            pout_free(&o);
            ctx_reset(ctx);
            return rc;
        }
    }
    res = calloc(1, sizeof *res);
    if (res == NULL) {
        pout_free(&o);
        ctx_reset(ctx);
        return mr_error_set(err, MR_E_NOMEM, "out of memory for a pseudonymiser result");
    }
    res->whole = whole;
    res->n_sealed = whole ? 0 : ctx->n_sealed;
    rc = preid_write(&ctx->sha, msg, len, o.buf.len, o.edits, o.n_edits, &res->reid,
                     res->orig_sha256, err);
    if (rc == 0) {
        res->n_tokens = ptokens_count(&ctx->tokens);
        res->tokens = calloc(res->n_tokens ? res->n_tokens : 1, sizeof *res->tokens);
        if (res->tokens == NULL)
            rc = mr_error_set(err, MR_E_NOMEM, "out of memory for the token list");
    }
    for (size_t i = 0; rc == 0 && i < res->n_tokens; i++) {
        const char *tok;
        ptokens_at(&ctx->tokens, i, &res->tokens[i].kind, &tok);
        memcpy(res->tokens[i].token, tok, PSEUDO_TOKEN_LEN + 1);
    }
    if (rc == 0 && o.buf.p == NULL)
        rc = pbuf_reserve(&o.buf, 1, err);   /* a valid pointer even for 0 bytes */
    res->bytes = o.buf;
    o.buf = (pbuf){0};
    pout_free(&o);
    ctx_reset(ctx);
    if (rc != 0) {
        pseudo_result_free(res);
        return rc;
    }
    mr_error_clear(err);
    *out = res;
    return 0;
}

static bool message_args_ok(const unsigned char *msg, size_t len, pseudo_result **out)
{
    return out != NULL && (msg != NULL || len == 0);
}

static const unsigned char EMPTY[1] = {0};

int pseudo_session_message_ex(pseudo_session *s, const unsigned char *msg, size_t len,
                              unsigned test_flags, pseudo_result **out, mr_error *err)
{
    if (s == NULL || !message_args_ok(msg, len, out))
        return mr_error_set(err, MR_E_INVALID, "pseudo_session_message: bad argument");
    *out = NULL;
    return session_run(&s->ctx, msg != NULL ? msg : EMPTY, len, test_flags, out, err);
}

int pseudo_session_message(pseudo_session *s, const unsigned char *msg, size_t len,
                           pseudo_result **out, mr_error *err)
{
    return pseudo_session_message_ex(s, msg, len, 0, out, err);
}

/* One message without a session: the same code on a context that lives for the call. */
int pseudo_message_ex(const pseudo_key *key, const struct pseudo_policy *policy,
                      const unsigned char *msg, size_t len, unsigned test_flags,
                      pseudo_result **out, mr_error *err)
{
    struct pseudo_ctx ctx;
    int rc;

    if (key == NULL || policy == NULL || !message_args_ok(msg, len, out))
        return mr_error_set(err, MR_E_INVALID, "pseudo_message: bad argument");
    *out = NULL;
    ctx_init(&ctx, key, policy);
    rc = session_run(&ctx, msg != NULL ? msg : EMPTY, len, test_flags, out, err);
    ctx_free(&ctx);
    return rc;
}



int pseudo_message(const pseudo_key *key, const struct pseudo_policy *policy,
                   const unsigned char *msg, size_t len, pseudo_result **out, mr_error *err)
{
    return pseudo_message_ex(key, policy, msg, len, 0, out, err);
}

const unsigned char *pseudo_result_bytes(const pseudo_result *res, size_t *len)
{
    *len = res->bytes.len;
    return res->bytes.p;
}

const unsigned char *pseudo_result_reid(const pseudo_result *res, size_t *len)
{
    *len = res->reid.len;
    return res->reid.p;
}

const unsigned char *pseudo_result_original_sha256(const pseudo_result *res)
{
    return res->orig_sha256;
}

size_t pseudo_result_token_count(const pseudo_result *res)
{
    return res->n_tokens;
}

int pseudo_result_token(const pseudo_result *res, size_t i, enum pseudo_kind *kind,
                        const char **token)
{
    if (res == NULL || i >= res->n_tokens)
        return MR_E_INVALID;
    *kind = res->tokens[i].kind;
    *token = res->tokens[i].token;
    return 0;
}

size_t pseudo_result_sealed_count(const pseudo_result *res)
{
    return res->n_sealed;
}

bool pseudo_result_is_whole(const pseudo_result *res)
{
    return res->whole;
}

void pseudo_result_free(pseudo_result *res)
{
    if (res == NULL)
        return;
    pbuf_free(&res->bytes);
    pbuf_free(&res->reid);
    free(res->tokens);
    free(res);
}
