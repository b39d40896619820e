//! Genesis presets: the states a chain spec can start from.

use crate::{
	AccountId, AuraConfig, BalancesConfig, CouncilConfig, GrandpaConfig, RuntimeGenesisConfig,
	SudoConfig, UNIT,
};
use alloc::{vec, vec::Vec};
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET, LOCAL_TESTNET_RUNTIME_PRESET};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};

/// What each development account starts with.
const DEV_ENDOWMENT: u128 = 1_000_000 * UNIT;

/// A dev chain whose validators (Aura and GRANDPA, equal weight) are the well-known accounts
/// `validators`: //Alice is sudo; //Alice, //Bob and //Charlie form the council; the six
/// well-known dev accounts are funded.
///
/// It is a complete config rather than a patch, so that it can be passed to `build_state` as
/// it is, as well as merged over the default like any other preset.
fn dev_config(validators: &[(Sr25519Keyring, Ed25519Keyring)]) -> RuntimeGenesisConfig {
	let endowed: Vec<AccountId> = [
		Sr25519Keyring::Alice,
		Sr25519Keyring::Bob,
		Sr25519Keyring::Charlie,
		Sr25519Keyring::Dave,
		Sr25519Keyring::Eve,
		Sr25519Keyring::Ferdie,
	]
	.into_iter()
	.map(|k| k.to_account_id())
	.collect();
	let council: Vec<AccountId> =
		[Sr25519Keyring::Alice, Sr25519Keyring::Bob, Sr25519Keyring::Charlie]
			.into_iter()
			.map(|k| k.to_account_id())
			.collect();
	let aura: Vec<AuraId> = validators.iter().map(|(sr, _)| sr.public().into()).collect();
	let grandpa: Vec<(GrandpaId, u64)> =
		validators.iter().map(|(_, ed)| (ed.public().into(), 1)).collect();

	RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed.into_iter().map(|a| (a, DEV_ENDOWMENT)).collect(),
			..Default::default()
		},
		aura: AuraConfig { authorities: aura },
		grandpa: GrandpaConfig { authorities: grandpa, ..Default::default() },
		sudo: SudoConfig { key: Some(Sr25519Keyring::Alice.to_account_id()) },
		council: CouncilConfig { members: council, ..Default::default() },
		..Default::default()
	}
}

/// The JSON of the preset named `id`, if this runtime has one: `development` has //Alice as
/// the only validator, `local_testnet` //Alice and //Bob.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let config = match id.as_ref() {
		DEV_RUNTIME_PRESET => dev_config(&[(Sr25519Keyring::Alice, Ed25519Keyring::Alice)]),
		LOCAL_TESTNET_RUNTIME_PRESET => dev_config(&[
			(Sr25519Keyring::Alice, Ed25519Keyring::Alice),
			(Sr25519Keyring::Bob, Ed25519Keyring::Bob),
		]),
		_ => return None,
	};
	Some(
		serde_json::to_string(&config)
			.expect("serialization to json is expected to work. qed.")
			.into_bytes(),
	)
}

/// The names of all presets.
pub fn preset_names() -> Vec<PresetId> {
	vec![PresetId::from(DEV_RUNTIME_PRESET), PresetId::from(LOCAL_TESTNET_RUNTIME_PRESET)]
}
