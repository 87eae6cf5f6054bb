package diameter

// Command codes (RFC 6733 §3.1; TS 29.229 §6.1; TS 29.329 §6.1; TS 29.214 §5.6).
const (
	CmdCapabilitiesExchange uint32 = 257 // CER/CEA
	CmdDeviceWatchdog       uint32 = 280 // DWR/DWA
	CmdDisconnectPeer       uint32 = 282 // DPR/DPA

	// Cx (AppCx).
	CmdUserAuthorization       uint32 = 300 // UAR/UAA
	CmdServerAssignment        uint32 = 301 // SAR/SAA
	CmdLocationInfo            uint32 = 302 // LIR/LIA
	CmdMultimediaAuth          uint32 = 303 // MAR/MAA
	CmdRegistrationTermination uint32 = 304 // RTR/RTA
	CmdPushProfile             uint32 = 305 // PPR/PPA

	// Sh (AppSh).
	CmdUserData               uint32 = 306 // UDR/UDA
	CmdProfileUpdate          uint32 = 307 // PUR/PUA
	CmdSubscribeNotifications uint32 = 308 // SNR/SNA
	CmdPushNotification       uint32 = 309 // PNR/PNA

	// Rx (AppRx).
	CmdAA                 uint32 = 265 // AAR/AAA
	CmdReAuth             uint32 = 258 // RAR/RAA
	CmdSessionTermination uint32 = 275 // STR/STA
	CmdAbortSession       uint32 = 274 // ASR/ASA
)

// Base AVP codes (RFC 6733 §4.5 and others, vendor 0).
const (
	AVPUserName                    uint32 = 1
	AVPClass                       uint32 = 25
	AVPSessionTimeout              uint32 = 27
	AVPProxyState                  uint32 = 33
	AVPEventTimestamp              uint32 = 55
	AVPHostIPAddress               uint32 = 257
	AVPAuthApplicationID           uint32 = 258
	AVPAcctApplicationID           uint32 = 259
	AVPVendorSpecificApplicationID uint32 = 260
	AVPRedirectHostUsage           uint32 = 261
	AVPRedirectMaxCacheTime        uint32 = 262
	AVPSessionID                   uint32 = 263
	AVPOriginHost                  uint32 = 264
	AVPSupportedVendorID           uint32 = 265
	AVPVendorID                    uint32 = 266
	AVPFirmwareRevision            uint32 = 267
	AVPResultCode                  uint32 = 268
	AVPProductName                 uint32 = 269
	AVPDisconnectCause             uint32 = 273
	AVPAuthRequestType             uint32 = 274
	AVPAuthSessionState            uint32 = 277
	AVPOriginStateID               uint32 = 278
	AVPFailedAVP                   uint32 = 279
	AVPProxyHost                   uint32 = 280
	AVPErrorMessage                uint32 = 281
	AVPRouteRecord                 uint32 = 282
	AVPDestinationRealm            uint32 = 283
	AVPProxyInfo                   uint32 = 284
	AVPReAuthRequestType           uint32 = 285
	AVPAuthorizationLifetime       uint32 = 291
	AVPRedirectHost                uint32 = 292
	AVPDestinationHost             uint32 = 293
	AVPErrorReportingHost          uint32 = 294
	AVPTerminationCause            uint32 = 295
	AVPOriginRealm                 uint32 = 296
	AVPExperimentalResult          uint32 = 297
	AVPExperimentalResultCode      uint32 = 298
	AVPInbandSecurityID            uint32 = 299
	AVPDRMP                        uint32 = 301
)

// IETF AVPs used by Cx and Rx (vendor 0).
const (
	AVPFramedIPAddress    uint32 = 8   // RFC 7155
	AVPCalledStationID    uint32 = 30  // RFC 7155
	AVPFramedInterfaceID  uint32 = 96  // RFC 7155
	AVPFramedIPv6Prefix   uint32 = 97  // RFC 7155
	AVPDigestRealm        uint32 = 104 // RFC 4590
	AVPDigestQoP          uint32 = 110 // RFC 4590
	AVPDigestAlgorithm    uint32 = 111 // RFC 4590
	AVPDigestHA1          uint32 = 121 // RFC 4590
	AVPSubscriptionID     uint32 = 443 // RFC 4006
	AVPSubscriptionIDData uint32 = 444 // RFC 4006
	AVPFinalUnitAction    uint32 = 449 // RFC 4006
	AVPSubscriptionIDType uint32 = 450 // RFC 4006
)

// Cx AVP codes (TS 29.229 §6.3, vendor 10415 unless noted).
const (
	AVPLineIdentifier                          uint32 = 500 // vendor ETSI 13019
	AVPVisitedNetworkIdentifier                uint32 = 600
	AVPPublicIdentity                          uint32 = 601
	AVPServerName                              uint32 = 602
	AVPServerCapabilities                      uint32 = 603
	AVPMandatoryCapability                     uint32 = 604
	AVPOptionalCapability                      uint32 = 605
	AVPUserData                                uint32 = 606
	AVPSIPNumberAuthItems                      uint32 = 607
	AVPSIPAuthenticationScheme                 uint32 = 608
	AVPSIPAuthenticate                         uint32 = 609
	AVPSIPAuthorization                        uint32 = 610
	AVPSIPAuthenticationContext                uint32 = 611
	AVPSIPAuthDataItem                         uint32 = 612
	AVPSIPItemNumber                           uint32 = 613
	AVPServerAssignmentType                    uint32 = 614
	AVPDeregistrationReason                    uint32 = 615
	AVPReasonCode                              uint32 = 616
	AVPReasonInfo                              uint32 = 617
	AVPChargingInformation                     uint32 = 618
	AVPPrimaryEventChargingFunctionName        uint32 = 619
	AVPSecondaryEventChargingFunctionName      uint32 = 620
	AVPPrimaryChargingCollectionFunctionName   uint32 = 621
	AVPSecondaryChargingCollectionFunctionName uint32 = 622
	AVPUserAuthorizationType                   uint32 = 623
	AVPUserDataAlreadyAvailable                uint32 = 624
	AVPConfidentialityKey                      uint32 = 625
	AVPIntegrityKey                            uint32 = 626
	AVPSupportedFeatures                       uint32 = 628
	AVPFeatureListID                           uint32 = 629
	AVPFeatureList                             uint32 = 630
	AVPSupportedApplications                   uint32 = 631
	AVPAssociatedIdentities                    uint32 = 632
	AVPOriginatingRequest                      uint32 = 633
	AVPWildcardedPublicIdentity                uint32 = 634
	AVPSIPDigestAuthenticate                   uint32 = 635
	AVPUARFlags                                uint32 = 637
	AVPLooseRouteIndication                    uint32 = 638
	AVPSCSCFRestorationInfo                    uint32 = 639
	AVPPath                                    uint32 = 640
	AVPContact                                 uint32 = 641
	AVPSubscriptionInfo                        uint32 = 642
	AVPCallIDSIPHeader                         uint32 = 643
	AVPFromSIPHeader                           uint32 = 644
	AVPToSIPHeader                             uint32 = 645
	AVPRecordRoute                             uint32 = 646
	AVPAssociatedRegisteredIdentities          uint32 = 647
	AVPMultipleRegistrationIndication          uint32 = 648
	AVPRestorationInfo                         uint32 = 649
	AVPSessionPriority                         uint32 = 650
	AVPIdentityWithEmergencyRegistration       uint32 = 651
	AVPPriviledgedSenderIndication             uint32 = 652
	AVPLIAFlags                                uint32 = 653
	AVPInitialCSeqSequenceNumber               uint32 = 654
	AVPSARFlags                                uint32 = 655
	AVPAllowedWAFWWSFIdentities                uint32 = 656
	AVPWebRTCAuthenticationFunctionName        uint32 = 657
	AVPWebRTCWebServerFunctionName             uint32 = 658
	AVPRTRFlags                                uint32 = 659
	AVPPCSCFSubscriptionInfo                   uint32 = 660
	AVPRegistrationTimeOut                     uint32 = 661
)

// Sh AVP codes (TS 29.329 §6.3, vendor 10415). Sh also uses Public-Identity,
// Server-Name, Supported-Features, Wildcarded-Public-Identity and
// Session-Priority with their Cx codes.
const (
	AVPWildcardedIMPU          uint32 = 636
	AVPUserIdentity            uint32 = 700
	AVPMSISDN                  uint32 = 701
	AVPShUserData              uint32 = 702
	AVPDataReference           uint32 = 703
	AVPServiceIndication       uint32 = 704
	AVPSubsReqType             uint32 = 705
	AVPRequestedDomain         uint32 = 706
	AVPCurrentLocation         uint32 = 707
	AVPIdentitySet             uint32 = 708
	AVPExpiryTime              uint32 = 709
	AVPSendDataIndication      uint32 = 710
	AVPDSAITag                 uint32 = 711
	AVPOneTimeNotification     uint32 = 712
	AVPRequestedNodes          uint32 = 713
	AVPServingNodeIndication   uint32 = 714
	AVPRepositoryDataID        uint32 = 715
	AVPSequenceNumber          uint32 = 716
	AVPPrePagingSupported      uint32 = 717
	AVPLocalTimeZoneIndication uint32 = 718
	AVPUDRFlags                uint32 = 719
	AVPCallReferenceInfo       uint32 = 720
	AVPCallReferenceNumber     uint32 = 721
	AVPASNumber                uint32 = 722
)

// Rx AVP codes (TS 29.214 §5.3 and imported ones, vendor 10415 unless noted).
const (
	AVP3GPPSGSNMCCMNC                       uint32 = 18
	AVP3GPPUserLocationInfo                 uint32 = 22
	AVP3GPPMSTimeZone                       uint32 = 23
	AVPReservationPriority                  uint32 = 458 // vendor ETSI 13019
	AVPAbortCause                           uint32 = 500
	AVPAccessNetworkChargingAddress         uint32 = 501
	AVPAccessNetworkChargingIdentifier      uint32 = 502
	AVPAccessNetworkChargingIdentifierValue uint32 = 503
	AVPAFApplicationIdentifier              uint32 = 504
	AVPAFChargingIdentifier                 uint32 = 505
	AVPFlowDescription                      uint32 = 507
	AVPFlowNumber                           uint32 = 509
	AVPFlows                                uint32 = 510
	AVPFlowStatus                           uint32 = 511
	AVPFlowUsage                            uint32 = 512
	AVPSpecificAction                       uint32 = 513
	AVPMaxRequestedBandwidthDL              uint32 = 515
	AVPMaxRequestedBandwidthUL              uint32 = 516
	AVPMediaComponentDescription            uint32 = 517
	AVPMediaComponentNumber                 uint32 = 518
	AVPMediaSubComponent                    uint32 = 519
	AVPMediaType                            uint32 = 520
	AVPRRBandwidth                          uint32 = 521
	AVPRSBandwidth                          uint32 = 522
	AVPSIPForkingIndication                 uint32 = 523
	AVPCodecData                            uint32 = 524
	AVPServiceURN                           uint32 = 525
	AVPAcceptableServiceInfo                uint32 = 526
	AVPServiceInfoStatus                    uint32 = 527
	AVPAFSignallingProtocol                 uint32 = 529
	AVPRxRequestType                        uint32 = 533
	AVPMinRequestedBandwidthDL              uint32 = 534
	AVPMinRequestedBandwidthUL              uint32 = 535
	AVPRequiredAccessInfo                   uint32 = 536
	AVPIPDomainID                           uint32 = 537
	AVPRetryInterval                        uint32 = 541
	AVPContentVersion                       uint32 = 552
	AVPIPCANType                            uint32 = 1027
	AVPRATType                              uint32 = 1032
	AVPSessionReleaseCause                  uint32 = 1045
	AVPANGWAddress                          uint32 = 1050
)

// Result-Code values (RFC 6733 §7.1).
const (
	DiameterMultiRoundAuth         uint32 = 1001
	DiameterSuccess                uint32 = 2001
	DiameterLimitedSuccess         uint32 = 2002
	DiameterCommandUnsupported     uint32 = 3001
	DiameterUnableToDeliver        uint32 = 3002
	DiameterRealmNotServed         uint32 = 3003
	DiameterTooBusy                uint32 = 3004
	DiameterLoopDetected           uint32 = 3005
	DiameterRedirectIndication     uint32 = 3006
	DiameterApplicationUnsupported uint32 = 3007
	DiameterInvalidHdrBits         uint32 = 3008
	DiameterInvalidAVPBits         uint32 = 3009
	DiameterUnknownPeer            uint32 = 3010
	DiameterAuthenticationRejected uint32 = 4001
	DiameterOutOfSpace             uint32 = 4002
	DiameterElectionLost           uint32 = 4003
	DiameterAVPUnsupported         uint32 = 5001
	DiameterUnknownSessionID       uint32 = 5002
	DiameterAuthorizationRejected  uint32 = 5003
	DiameterInvalidAVPValue        uint32 = 5004
	DiameterMissingAVP             uint32 = 5005
	DiameterResourcesExceeded      uint32 = 5006
	DiameterContradictingAVPs      uint32 = 5007
	DiameterAVPNotAllowed          uint32 = 5008
	DiameterAVPOccursTooManyTimes  uint32 = 5009
	DiameterNoCommonApplication    uint32 = 5010
	DiameterUnsupportedVersion     uint32 = 5011
	DiameterUnableToComply         uint32 = 5012
	DiameterInvalidBitInHeader     uint32 = 5013
	DiameterInvalidAVPLength       uint32 = 5014
	DiameterInvalidMessageLength   uint32 = 5015
	DiameterInvalidAVPBitCombo     uint32 = 5016
	DiameterNoCommonSecurity       uint32 = 5017
)

// Experimental-Result-Code values of Cx (TS 29.229 §6.2, vendor 10415).
const (
	DiameterFirstRegistration                  uint32 = 2001
	DiameterSubsequentRegistration             uint32 = 2002
	DiameterUnregisteredService                uint32 = 2003
	DiameterSuccessServerNameNotStored         uint32 = 2004
	DiameterErrorUserUnknown                   uint32 = 5001
	DiameterErrorIdentitiesDontMatch           uint32 = 5002
	DiameterErrorIdentityNotRegistered         uint32 = 5003
	DiameterErrorRoamingNotAllowed             uint32 = 5004
	DiameterErrorIdentityAlreadyRegistered     uint32 = 5005
	DiameterErrorAuthSchemeNotSupported        uint32 = 5006
	DiameterErrorInAssignmentType              uint32 = 5007
	DiameterErrorTooMuchData                   uint32 = 5008
	DiameterErrorNotSupportedUserData          uint32 = 5009
	DiameterErrorFeatureUnsupported            uint32 = 5011
	DiameterErrorServingNodeFeatureUnsupported uint32 = 5012
)

// Experimental-Result-Code values of Sh (TS 29.329 §6.2, vendor 10415); Sh
// also uses DiameterErrorUserUnknown (5001), DiameterErrorIdentitiesDontMatch
// (5002) and DiameterErrorFeatureUnsupported (5011).
const (
	DiameterUserDataNotAvailable          uint32 = 4100
	DiameterPriorUpdateInProgress         uint32 = 4101
	DiameterErrorUserDataNotRecognized    uint32 = 5100
	DiameterErrorOperationNotAllowed      uint32 = 5101
	DiameterErrorUserDataCannotBeRead     uint32 = 5102
	DiameterErrorUserDataCannotBeModified uint32 = 5103
	DiameterErrorUserDataCannotBeNotified uint32 = 5104
	DiameterErrorTransparentDataOutOfSync uint32 = 5105
	DiameterErrorSubsDataAbsent           uint32 = 5106
	DiameterErrorNoSubscriptionToData     uint32 = 5107
	DiameterErrorDSAINotAvailable         uint32 = 5108
)

// Auth-Session-State values (RFC 6733 §8.11).
const (
	StateMaintained   uint32 = 0
	NoStateMaintained uint32 = 1
)

// Disconnect-Cause values (RFC 6733 §5.4.3).
const (
	DisconnectRebooting            uint32 = 0
	DisconnectBusy                 uint32 = 1
	DisconnectDoNotWantToTalkToYou uint32 = 2
)

// Server-Assignment-Type values (TS 29.229 §6.3.15).
const (
	SATNoAssignment                         uint32 = 0
	SATRegistration                         uint32 = 1
	SATReRegistration                       uint32 = 2
	SATUnregisteredUser                     uint32 = 3
	SATTimeoutDeregistration                uint32 = 4
	SATUserDeregistration                   uint32 = 5
	SATTimeoutDeregistrationStoreServerName uint32 = 6
	SATUserDeregistrationStoreServerName    uint32 = 7
	SATAdministrativeDeregistration         uint32 = 8
	SATAuthenticationFailure                uint32 = 9
	SATAuthenticationTimeout                uint32 = 10
	SATDeregistrationTooMuchData            uint32 = 11
	SATAAAUserDataRequest                   uint32 = 12
	SATPGWUpdate                            uint32 = 13
	SATRestoration                          uint32 = 14
)

// User-Authorization-Type values (TS 29.229 §6.3.24).
const (
	UATRegistration                uint32 = 0
	UATDeRegistration              uint32 = 1
	UATRegistrationAndCapabilities uint32 = 2
)

// Reason-Code values of Deregistration-Reason (TS 29.229 §6.3.17).
const (
	ReasonPermanentTermination uint32 = 0
	ReasonNewServerAssigned    uint32 = 1
	ReasonServerChange         uint32 = 2
	ReasonRemoveSCSCF          uint32 = 3
)

// User-Data-Already-Available values (TS 29.229 §6.3.26).
const (
	UserDataNotAvailable     uint32 = 0
	UserDataAlreadyAvailable uint32 = 1
)

// Originating-Request value (TS 29.229 §6.3.32).
const OriginatingRequestOriginating uint32 = 0

// Data-Reference values (TS 29.329 §6.3.4), the ones an IMS AS usually asks.
const (
	DataRefRepositoryData        uint32 = 0
	DataRefIMSPublicIdentity     uint32 = 10
	DataRefIMSUserState          uint32 = 11
	DataRefSCSCFName             uint32 = 12
	DataRefInitialFilterCriteria uint32 = 13
	DataRefLocationInformation   uint32 = 14
	DataRefUserState             uint32 = 15
	DataRefChargingInformation   uint32 = 16
	DataRefMSISDN                uint32 = 17
	DataRefPSIActivation         uint32 = 18
	DataRefDSAI                  uint32 = 19
)

// Rx enumerations (TS 29.214 §5.3).
const (
	RxRequestInitial          uint32 = 0
	RxRequestUpdate           uint32 = 1
	RxRequestPCSCFRestoration uint32 = 2

	AbortBearerReleased             uint32 = 0
	AbortInsufficientServerResource uint32 = 1
	AbortInsufficientBearerResource uint32 = 2

	FlowEnabledUplink   uint32 = 0
	FlowEnabledDownlink uint32 = 1
	FlowEnabled         uint32 = 2
	FlowDisabled        uint32 = 3
	FlowRemoved         uint32 = 4

	MediaAudio   uint32 = 0
	MediaVideo   uint32 = 1
	MediaData    uint32 = 2
	MediaControl uint32 = 4
	MediaText    uint32 = 5
	MediaMessage uint32 = 6

	TerminationDiameterLogout uint32 = 1
)
