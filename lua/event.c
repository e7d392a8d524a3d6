/* Builds the SES-shaped event. Verdicts are {status = "PASS"} objects as in SES; dmarcPolicy
 * is the object form {status = "REJECT"} used by the SES developer guide's sample (the
 * notification's plain-string form is what scripts should also accept). */
#include "lua/event.h"
#include "core/headers.h"
#include "core/message.h"
#include "core/verdict.h"
#include "lua/msg_api.h"
#include "lua/sandbox.h"

#include <gmime/gmime.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void set_str(lua_State *L, const char *key, const char *val)
{
    lua_pushstring(L, val);
    lua_setfield(L, -2, key);
}

static void set_verdict(lua_State *L, const char *key, enum verdict v)
{
    lua_createtable(L, 0, 1);
    /* "UNSET" when not computed (checks off): SES has no such value, but no SES value would be
     * honest (and scripts that test for "FAIL" behave the same). */
    set_str(L, "status", verdict_name(v));
    lua_setfield(L, -2, key);
}

static void iso_time(time_t t, char *out, size_t len)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

/* With [commonHeaders, mail] on top: sets commonHeaders[key] to the values of every field
 * named want. */
static void common_list(lua_State *L, const char *want, const char *key)
{
    lua_getfield(L, -1, "headers");
    int headers = lua_gettop(L);
    lua_newtable(L);
    int n = 0;
    lua_Integer len = (lua_Integer)lua_rawlen(L, headers);
    for (lua_Integer i = 1; i <= len; i++) {
        lua_rawgeti(L, headers, i);
        lua_getfield(L, -1, "name");
        if (strcasecmp(lua_tostring(L, -1), want) == 0) {
            lua_getfield(L, -2, "value");
            lua_rawseti(L, -4, ++n);
        }
        lua_pop(L, 2);
    }
    lua_remove(L, headers);
    lua_setfield(L, -3, key); /* into commonHeaders, below the copy of mail */
}

static void push_mail(lua_State *L, const struct event_info *ev, const char *ts)
{
    const struct message *m = ev->m;
    lua_createtable(L, 0, 8);
    set_str(L, "timestamp", ts);
    set_str(L, "source", m->env.mail_from ? m->env.mail_from : "");
    set_str(L, "messageId", m->env.qid);
    lua_createtable(L, (int)m->env.nrcpts, 0);
    for (size_t i = 0; i < m->env.nrcpts; i++) {
        lua_pushstring(L, m->env.rcpts[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "destination");

    lua_newtable(L);
    struct hdr_reader r;
    struct hdr_field f;
    size_t bytes = 0;
    int n = 0, truncated = 0;
    hdr_reader_init(&r, m->body.data, m->body.len);
    while (hdr_reader_next(&r, &f)) {
        bytes += f.len;
        if (n >= EVENT_MAX_HEADERS || bytes > EVENT_MAX_HEADER_BYTES) {
            truncated = 1;
            break;
        }
        lua_createtable(L, 0, 2);
        lua_pushlstring(L, r.msg + f.off, f.name_len);
        lua_setfield(L, -2, "name");
        push_unfolded(L, r.msg, &f);
        lua_setfield(L, -2, "value");
        lua_rawseti(L, -2, ++n);
    }
    lua_setfield(L, -2, "headers");
    lua_pushboolean(L, truncated);
    lua_setfield(L, -2, "headersTruncated");

    /* commonHeaders: from/to/cc as lists of values, the rest as single values. */
    lua_createtable(L, 0, 7);
    lua_pushvalue(L, -2); /* mail, to reach mail.headers */
    common_list(L, "From", "from");
    common_list(L, "To", "to");
    common_list(L, "Cc", "cc");
    lua_pop(L, 1);
    static const struct {
        const char *header, *key;
    } singles[] = {{"Date", "date"},
                   {"Message-ID", "messageId"},
                   {"Subject", "subject"},
                   {"Return-Path", "returnPath"}};
    lua_getfield(L, -2, "headers");
    lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
    for (size_t k = 0; k < sizeof singles / sizeof singles[0]; k++) {
        for (lua_Integer i = 1; i <= len; i++) {
            lua_rawgeti(L, -1, i);
            lua_getfield(L, -1, "name");
            int match = strcasecmp(lua_tostring(L, -1), singles[k].header) == 0;
            lua_pop(L, 1);
            if (match) {
                lua_getfield(L, -1, "value");
                if (k == 2) { /* the subject decoded, as SES gives it */
                    char *dec = g_mime_utils_header_decode_text(NULL, lua_tostring(L, -1));
                    if (dec) {
                        struct sandbox *sb = sandbox_of(L);
                        sandbox_own(sb, dec, g_free);
                        lua_pop(L, 1);
                        lua_pushstring(L, dec);
                        sandbox_release(sb, dec);
                    }
                }
                lua_setfield(L, -4, singles[k].key);
                lua_pop(L, 1);
                break;
            }
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    /* SES fills returnPath from the envelope when the message has no Return-Path. */
    int has = lua_getfield(L, -1, "returnPath") != LUA_TNIL;
    lua_pop(L, 1);
    if (!has && m->env.mail_from && m->env.mail_from[0])
        set_str(L, "returnPath", m->env.mail_from);
    lua_setfield(L, -2, "commonHeaders");
}

static void push_receipt(lua_State *L, const struct event_info *ev, const char *ts)
{
    const struct message *m = ev->m;
    lua_createtable(L, 0, 10);
    set_str(L, "timestamp", ts);
    lua_pushinteger(L, (lua_Integer)((time(NULL) - m->env.arrival) * 1000));
    lua_setfield(L, -2, "processingTimeMillis");
    lua_createtable(L, (int)ev->nrcpts, 0);
    for (size_t i = 0; i < ev->nrcpts; i++) {
        lua_pushstring(L, m->env.rcpts[ev->rcpts[i]]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "recipients");
    const struct verdicts *v = &m->env.verdicts;
    set_verdict(L, "spamVerdict", v->spam);
    set_verdict(L, "virusVerdict", v->virus);
    set_verdict(L, "spfVerdict", v->spf);
    set_verdict(L, "dkimVerdict", v->dkim);
    set_verdict(L, "dmarcVerdict", v->dmarc);
    if (v->dmarc_policy != DMARC_POLICY_UNSET) {
        lua_createtable(L, 0, 1);
        set_str(L, "status", dmarc_policy_name(v->dmarc_policy));
        lua_setfield(L, -2, "dmarcPolicy");
    }
    lua_createtable(L, 0, 4);
    set_str(L, "type", "Lua");
    set_str(L, "functionArn", ev->script);
    set_str(L, "invocationType", "RequestResponse");
    set_str(L, "rule", ev->rule);
    lua_setfield(L, -2, "action");
}

void event_push(lua_State *L, const struct event_info *ev)
{
    char ts[40];
    iso_time(ev->m->env.arrival, ts, sizeof ts);
    lua_createtable(L, 0, 1); /* event */
    lua_createtable(L, 1, 0); /* Records */
    lua_createtable(L, 0, 3); /* Records[1] */
    set_str(L, "eventSource", "sluice:ses");
    set_str(L, "eventVersion", "1.0");
    lua_createtable(L, 0, 2); /* ses */
    push_mail(L, ev, ts);
    lua_setfield(L, -2, "mail");
    push_receipt(L, ev, ts);
    lua_setfield(L, -2, "receipt");
    lua_setfield(L, -2, "ses");
    lua_rawseti(L, -2, 1);
    lua_setfield(L, -2, "Records");
}
