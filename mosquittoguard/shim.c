//go:build mosquitto

// The three entry points mosquitto looks up, and the callbacks it calls,
// in C: cgo's //export cannot give mosquitto_plugin_version its
// `const int *` parameter, and the event structs are read here so that
// the Go side takes plain values.

#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>
#include "_cgo_export.h"

static mosquitto_plugin_id_t *plugin_id;

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

/* OpenSSL's, looked up in mosquitto's process rather than linked: the
 * plugin builds without OpenSSL's headers, and a mosquitto built without
 * TLS never hands it a certificate. */
static int (*x509_to_der)(void *cert, unsigned char **out);
static void (*x509_free)(void *cert);

/* The client certificate mosquitto verified, DER-encoded into *der (the
 * caller frees it; NULL without a certificate). -1: there is one, and it
 * cannot be read. */
static int client_certificate(struct mosquitto *client, unsigned char **der, int *len)
{
	void *cert = mosquitto_client_certificate(client);
	unsigned char *p;
	int n;
	*der = NULL;
	*len = 0;
	if (cert == NULL) {
		return 0;
	}
	if (x509_to_der != NULL && (n = x509_to_der(cert, NULL)) > 0 && (*der = malloc((size_t)n)) != NULL) {
		p = *der;
		*len = x509_to_der(cert, &p);
	}
	if (x509_free != NULL) {
		x509_free(cert);
	}
	if (*len <= 0) {
		free(*der);
		*der = NULL;
		return -1;
	}
	return 0;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	unsigned char *der;
	int len, rc;
	(void)event;
	(void)userdata;
	if (client_certificate(ed->client, &der, &len) != 0) {
		/* never treat an unreadable certificate as none */
		return MOSQ_ERR_AUTH;
	}
	rc = mqttguardBasicAuth(ed->client, ed->username, ed->password, der, len);
	free(der);
	return rc;
}

/* aclDropped in plugin.go: a publish the Guard dropped. */
#define ACL_DROPPED (1 << 16)

/* The client whose publish the Guard dropped in the MOSQ_ACL_WRITE check
 * mosquitto made last: its MOSQ_EVT_MESSAGE comes next, on this same
 * thread. Kept here so that the message event needs no call into Go. */
static const struct mosquitto *drop_next;

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	int rc;
	(void)event;
	(void)userdata;
	rc = mqttguardACLCheck(ed->client, (char *)mosquitto_client_id(ed->client), ed->access, (char *)ed->topic, (void *)ed->payload, ed->payloadlen, ed->qos, ed->retain);
	if (ed->access == MOSQ_ACL_WRITE) {
		drop_next = rc == ACL_DROPPED ? ed->client : NULL;
	}
	return rc == ACL_DROPPED ? MOSQ_ERR_SUCCESS : rc;
}

/* A message the Guard dropped is renamed so that nobody may read it
 * (mqttguard's ACL refuses DroppedTopic to every reader) and is not
 * retained: acknowledged, delivered to no one. mosquitto 2.0 takes the
 * new topic without freeing the old one (2.1 frees it itself). */
static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	char *topic;
	(void)event;
	(void)userdata;
	if (ed->client != drop_next) {
		return MOSQ_ERR_SUCCESS;
	}
	drop_next = NULL;
	topic = mosquitto_strdup("$mqttguard/dropped");
	if (topic == NULL) {
		return MOSQ_ERR_NOMEM;
	}
#if LIBMOSQUITTO_MAJOR == 2 && LIBMOSQUITTO_MINOR == 0
	mosquitto_free(ed->topic);
#endif
	ed->topic = topic;
	ed->retain = false;
	return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	(void)event;
	(void)userdata;
	mqttguardDisconnect(ed->client);
	return MOSQ_ERR_SUCCESS;
}

static int on_tick(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)userdata;
	mqttguardTick();
	return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *event_data, void *userdata)
{
	(void)event;
	(void)event_data;
	(void)userdata;
	mqttguardReload();
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts, int opt_count)
{
	char *config = NULL;
	(void)userdata;
	for (int i = 0; i < opt_count; i++) {
		if (strcmp(opts[i].key, "config") == 0) {
			config = opts[i].value;
		}
	}
	x509_to_der = (int (*)(void *, unsigned char **))dlsym(RTLD_DEFAULT, "i2d_X509");
	x509_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "X509_free");
	if (mqttguardInit(config) != 0) {
		return MOSQ_ERR_UNKNOWN;
	}
	plugin_id = identifier;
	mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_TICK, on_tick, NULL, NULL);
	mosquitto_callback_register(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL, NULL);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	(void)userdata;
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_TICK, on_tick, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_RELOAD, on_reload, NULL);
	mqttguardCleanup();
	return MOSQ_ERR_SUCCESS;
}
