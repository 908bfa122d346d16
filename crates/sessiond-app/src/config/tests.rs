// figment::Jail closures return figment::Result, whose error is large by design.
#![allow(clippy::result_large_err)]

use figment::Jail;

use super::*;

const SECRET: &str = "a-production-secret-of-at-least-32-bytes";

#[test]
fn the_seeds_variable_names_are_accepted_as_they_are() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("SESSION_TIMEOUT_EMPLOYEE", "3600");
        jail.set_env("MAX_SESSIONS_GUEST", "9");
        jail.set_env("SESSION_REFRESH_THRESHOLD", "120");
        jail.set_env("ACCESS_TOKEN_TTL", "60");
        jail.set_env("BIND_ADDR", "0.0.0.0:9000");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        let policy = settings.session_policy();
        assert_eq!(
            policy.roles.get(Role::HotelEmployee).timeout,
            Duration::hours(1)
        );
        assert_eq!(policy.roles.get(Role::Guest).max_sessions, 9);
        assert_eq!(policy.refresh_threshold, Duration::minutes(2));
        assert_eq!(policy.access_token_ttl, Duration::minutes(1));
        assert_eq!(settings.bind_addr.port(), 9000);
        Ok(())
    });
}

#[test]
fn files_layer_under_the_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "default.toml",
            "[roles.vendor_admin]\ntimeout = 100\nabsolute_lifetime = 1000\nmax_sessions = 1\non_limit = \"reject\"\n",
        )?;
        jail.create_file("staging.toml", "[jwt]\nissuer = \"staging\"\n")?;
        jail.set_env("SESSIOND_ENV", "staging");
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("SESSIOND_JWT__AUDIENCE", "hotels");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        let vendor = settings.session_policy().roles.get(Role::VendorAdmin);
        assert_eq!(vendor.on_limit, LimitAction::Reject);
        assert_eq!(vendor.max_sessions, 1);
        assert_eq!(settings.jwt.issuer, "staging");
        assert_eq!(settings.jwt.audience, "hotels");
        Ok(())
    });
}

#[test]
fn a_missing_weak_or_default_secret_is_refused_outside_dev_mode() {
    Jail::expect_with(|jail| {
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("JWT_SECRET", "short");
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("JWT_SECRET", DEV_JWT_SECRET);
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("SESSIOND_ENV", "dev");
        assert!(Settings::load(jail.directory()).is_ok());
        Ok(())
    });
}

#[test]
fn secrets_anyone_could_guess_are_refused_outside_dev_mode() {
    Jail::expect_with(|jail| {
        for weak in [
            "a".repeat(40),
            "changeme".repeat(5),
            "ChangeMe".repeat(4),
            "abcd".repeat(10),
            "0123456789".repeat(4),
            DEV_JWT_SECRET.to_owned(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab".into(),
            "ab1ab1ab1ab1ab1ab1ab1ab1ab1ab1ab1ab1ab1ab1ab1".into(),
        ] {
            jail.set_env("JWT_SECRET", &weak);
            let refused = Settings::load(jail.directory());
            assert!(refused.is_err(), "{weak:?} was accepted");
        }
        // A weak previous key would verify forged tokens just the same.
        jail.set_env("JWT_SECRET", SECRET);
        jail.create_file(
            "production.toml",
            "[[jwt.previous_keys]]\nkid = \"k0\"\nsecret = \"changemechangemechangemechangeme\"\n",
        )?;
        assert!(Settings::load(jail.directory()).is_err());
        jail.create_file("production.toml", "")?;
        for strong in [
            SECRET,
            "integration-test-secret-of-32-bytes-or-more",
            "9f86d081884c7d659a2feaa0c55ad015",
            "3q2+7wAAAAC6DgAAyv66vgAAAAAAAAAAAAAAAEw3",
        ] {
            jail.set_env("JWT_SECRET", strong);
            let loaded = Settings::load(jail.directory());
            assert!(loaded.is_ok(), "{strong:?}: {:?}", loaded.err());
        }
        Ok(())
    });
}

#[test]
fn a_secret_of_digits_is_read_as_text() {
    Jail::expect_with(|jail| {
        // Leading zeros and more digits than any number type holds: the text, verbatim.
        let digits = "0071937408261563497210846375209183746509182736450918";
        jail.set_env("JWT_SECRET", digits);
        jail.set_env("SESSIOND_ADMIN_EMAIL", "root@example.com");
        jail.set_env("SESSIOND_ADMIN_PASSWORD", "12345678901234");
        jail.set_env("SESSIOND_JWT__KID", "2");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(settings.jwt_secret().expose_secret(), digits);
        assert_eq!(
            settings
                .admin_password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
            Some("12345678901234".to_owned())
        );
        assert_eq!(settings.jwt.kid, "2");
        // The prefixed name overrides the seed's, as for every setting.
        jail.set_env("SESSIOND_JWT__SECRET", "8".repeat(3) + digits);
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(
            settings.jwt_secret().expose_secret(),
            format!("888{digits}")
        );
        Ok(())
    });
}

#[test]
fn the_metrics_listener_and_the_new_limits_are_settings() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_SECRET", SECRET);
        let defaults = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(defaults.metrics_addr.to_string(), "127.0.0.1:9464");
        assert_eq!(defaults.http.body_timeout_ms, 10_000);
        assert_eq!(defaults.argon2.max_queued, 64);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(defaults.argon2.bounds().max_concurrent, cores);
        jail.set_env("METRICS_ADDR", "127.0.0.1:0");
        jail.set_env("SESSIOND_ARGON2__MAX_CONCURRENT", "3");
        jail.set_env("SESSIOND_HTTP__BODY_TIMEOUT_MS", "500");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(settings.metrics_addr.port(), 0);
        assert_eq!(settings.argon2.bounds().max_concurrent, 3);
        assert_eq!(settings.http.body_timeout_ms, 500);
        Ok(())
    });
}

#[test]
fn impossible_policies_are_refused() {
    Jail::expect_with(|jail| {
        jail.set_env("SESSIOND_ENV", "dev");
        jail.set_env("MAX_SESSIONS_ADMIN", "0");
        assert!(Settings::load(jail.directory()).is_err());
        jail.set_env("MAX_SESSIONS_ADMIN", "2");
        jail.set_env("SESSION_TIMEOUT_ADMIN", "999999999");
        assert!(Settings::load(jail.directory()).is_err());
        Ok(())
    });
}

#[test]
fn the_shipped_default_toml_says_what_the_code_does() {
    // The code's defaults come from the domain's policy; the shipped file spells them out
    // for operators. Any drift between the two fails here, key by key.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
    let from_file: Settings = Figment::new()
        .merge(Toml::file_exact(&shipped))
        .extract()
        .expect("config/default.toml parses");
    assert_eq!(
        format!("{from_file:#?}"),
        format!("{:#?}", Settings::default())
    );
    assert_eq!(from_file.session_policy(), SessionPolicy::default());
}

#[test]
fn registrations_per_address_are_limited_by_a_setting() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_SECRET", SECRET);
        let defaults = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(defaults.sessions.max_registrations_per_ip, 20);
        assert_eq!(
            defaults
                .session_policy()
                .sign_in_throttle
                .max_registrations_per_ip,
            20
        );
        jail.set_env("SESSIOND_SESSIONS__MAX_REGISTRATIONS_PER_IP", "3");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        let throttle = settings.session_policy().sign_in_throttle;
        assert_eq!(throttle.max_registrations_per_ip, 3);
        Ok(())
    });
}

#[test]
fn commands_that_sign_nothing_need_no_secret() {
    Jail::expect_with(|jail| {
        assert!(Settings::load(jail.directory()).is_err());
        let settings = Settings::load_for_command(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(settings.env, "production");
        // Everything else is still checked.
        jail.set_env("MAX_SESSIONS_GUEST", "0");
        assert!(Settings::load_for_command(jail.directory()).is_err());
        Ok(())
    });
}

#[test]
fn an_unreadable_value_is_named_as_the_user_set_it() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("ACCESS_TOKEN_TTL", "abc");
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(error.contains("ACCESS_TOKEN_TTL: invalid type"), "{error}");
        assert!(!error.contains("JWT.ACCESS_TOKEN_TTL"), "{error}");
        assert_eq!(error.matches("abc").count(), 1, "said once: {error}");

        jail.set_env("ACCESS_TOKEN_TTL", "60");
        jail.set_env("SESSIOND_HTTP__WORKERS", "many");
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(
            error.contains("SESSIOND_HTTP__WORKERS: invalid type"),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn a_redis_cluster_is_named_by_its_seeds_and_excludes_redis_url() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("DATABASE_URL", "postgres://localhost/sessiond");
        jail.set_env(
            "REDIS_CLUSTER_URLS",
            " redis://10.0.0.1:7000, redis://:pw@10.0.0.2:7001 ,,",
        );
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(
            settings.redis_cluster_seeds(),
            vec!["redis://10.0.0.1:7000", "redis://:pw@10.0.0.2:7001"]
        );
        assert!(settings.redis_url.is_none());

        jail.set_env("REDIS_URL", "redis://10.0.0.3:6379");
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(
            error.contains("REDIS_URL and REDIS_CLUSTER_URLS are both set"),
            "{error}"
        );

        jail.clear_env();
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("DATABASE_URL", "postgres://localhost/sessiond");
        jail.set_env("REDIS_CLUSTER_URLS", " , ");
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(
            error.contains("REDIS_CLUSTER_URLS names no node"),
            "{error}"
        );

        jail.clear_env();
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("REDIS_CLUSTER_URLS", "redis://10.0.0.1:7000");
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(
            error.contains("REDIS_CLUSTER_URLS needs DATABASE_URL"),
            "{error}"
        );
        Ok(())
    });
}

/// A PEM-shaped private key: the settings only check that one is there, start-up reads it.
const SOME_PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

#[test]
fn an_asymmetric_algorithm_needs_a_private_key_and_no_jwt_secret() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_ALGORITHM", "ES256");
        let missing = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(missing.contains("JWT_PRIVATE_KEY_FILE"), "{missing}");
        jail.set_env("JWT_PRIVATE_KEY_FILE", "/etc/sessiond/jwt.pem");
        // Outside dev mode, no JWT_SECRET, and none of its strength rules.
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(settings.jwt.algorithm, JwtAlgorithm::Es256);
        assert_eq!(
            settings.jwt.private_key_file.as_deref(),
            Some(Path::new("/etc/sessiond/jwt.pem"))
        );
        jail.set_env("JWT_SECRET", "short");
        assert!(
            Settings::load(jail.directory()).is_ok(),
            "an unused secret is not judged"
        );
        jail.set_env("JWT_PRIVATE_KEY", SOME_PEM);
        let both = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(both.contains("both set"), "{both}");
        Ok(())
    });
}

#[test]
fn the_private_key_may_come_from_the_environment_as_text() {
    Jail::expect_with(|jail| {
        jail.set_env("JWT_ALGORITHM", "EdDSA");
        jail.set_env("JWT_PRIVATE_KEY", SOME_PEM);
        jail.set_env("SESSIOND_JWT__KID", "2026-03");
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(settings.jwt.algorithm, JwtAlgorithm::EdDsa);
        assert_eq!(
            settings
                .jwt
                .private_key
                .as_ref()
                .map(ExposeSecret::expose_secret),
            Some(SOME_PEM)
        );
        assert_eq!(settings.jwt.kid, "2026-03");
        Ok(())
    });
}

#[test]
fn keys_of_the_other_kind_are_refused() {
    Jail::expect_with(|jail| {
        // HS256 (the default) with a private key: a forgotten JWT_ALGORITHM.
        jail.set_env("JWT_SECRET", SECRET);
        jail.set_env("JWT_PRIVATE_KEY", SOME_PEM);
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(error.contains("JWT_ALGORITHM"), "{error}");

        // ES256 with HS256 previous secrets, or a previous public key with two sources.
        jail.set_env("JWT_ALGORITHM", "ES256");
        jail.create_file(
            "production.toml",
            "[[jwt.previous_keys]]\nkid = \"k0\"\nsecret = \"an-old-hs256-secret-of-32-bytes-or-more\"\n",
        )?;
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(error.contains("previous_public_keys"), "{error}");
        jail.create_file(
            "production.toml",
            "[[jwt.previous_public_keys]]\nkid = \"k0\"\npublic_key_file = \"old.pem\"\npublic_key = \"PEM\"\n",
        )?;
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(error.contains("\"k0\""), "{error}");
        jail.create_file(
            "production.toml",
            "[[jwt.previous_public_keys]]\nkid = \"k0\"\npublic_key_file = \"old.pem\"\n",
        )?;
        let settings = Settings::load(jail.directory()).map_err(|e| e.to_string())?;
        assert_eq!(settings.jwt.previous_public_keys.len(), 1);

        jail.set_env("JWT_ALGORITHM", "RS256");
        let error = Settings::load(jail.directory()).unwrap_err().to_string();
        assert!(error.contains("JWT_ALGORITHM"), "{error}");
        Ok(())
    });
}
