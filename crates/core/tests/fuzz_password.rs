//! Property ("fuzz") target of the password normaliser (issue 6, security spec A07): the same
//! password in any Unicode normal form is one password, normalising is idempotent, and the
//! hard cap is judged on the normalised bytes. `make fuzz` runs many more cases.

use proptest::prelude::{prop_assert, prop_assert_eq, proptest};
use sesame_core::credentials::Password;
use unicode_normalization::UnicodeNormalization;

proptest! {
    #[test]
    fn prop_nfc_and_nfd_typings_are_one_password(raw in "\\PC{0,64}") {
        let nfd: String = raw.nfd().collect();
        let nfc: String = raw.nfc().collect();
        prop_assert_eq!(Password::new(&raw), Password::new(&nfd));
        prop_assert_eq!(Password::new(&raw), Password::new(&nfc));
    }

    #[test]
    fn prop_normalising_is_idempotent_and_gives_nfc(raw in "\\PC{0,64}") {
        let once = Password::new(&raw);
        let twice = Password::new(once.expose());
        prop_assert_eq!(&once, &twice);
        prop_assert!(unicode_normalization::is_nfc(once.expose()));
    }

    #[test]
    fn prop_the_hard_cap_is_judged_on_normalised_bytes(raw in "\\PC{0,40}", pad in 0usize..2000) {
        let long = format!("{raw}{}", "a".repeat(pad));
        let p = Password::new(&long);
        prop_assert_eq!(
            p.exceeds_hard_cap(),
            p.expose().len() > sesame_core::credentials::policy::MAX_PASSWORD_BYTES
        );
    }

    #[test]
    fn prop_different_passwords_stay_different(raw in "\\PC{1,40}", extra in "\\PC{1,3}") {
        // A05: P and P + x are two passwords.
        let longer = format!("{raw}{extra}");
        prop_assert!(Password::new(&raw) != Password::new(&longer));
    }
}
