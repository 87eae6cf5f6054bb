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

// AVP identities. An AVP is identified by its code *and* its Vendor-Id
// (RFC 6733 §4.1): Abort-Cause (500, vendor 10415) and Line-Identifier (500,
// vendor 13019) are different AVPs, and a User-Name (1) carrying Vendor-Id
// 10415 is not User-Name. The flags and data type of each come from the
// embedded dictionaries (see AVPCode.Flags).
const (
	v3GPP = AVPCode(Vendor3GPP) << 32
	vETSI = AVPCode(VendorETSI) << 32
)

// Base AVP codes (RFC 6733 §4.5 and others, vendor 0).
const (
	AVPUserName                    AVPCode = 1
	AVPClass                       AVPCode = 25
	AVPSessionTimeout              AVPCode = 27
	AVPProxyState                  AVPCode = 33
	AVPEventTimestamp              AVPCode = 55
	AVPHostIPAddress               AVPCode = 257
	AVPAuthApplicationID           AVPCode = 258
	AVPAcctApplicationID           AVPCode = 259
	AVPVendorSpecificApplicationID AVPCode = 260
	AVPRedirectHostUsage           AVPCode = 261
	AVPRedirectMaxCacheTime        AVPCode = 262
	AVPSessionID                   AVPCode = 263
	AVPOriginHost                  AVPCode = 264
	AVPSupportedVendorID           AVPCode = 265
	AVPVendorID                    AVPCode = 266
	AVPFirmwareRevision            AVPCode = 267
	AVPResultCode                  AVPCode = 268
	AVPProductName                 AVPCode = 269
	AVPDisconnectCause             AVPCode = 273
	AVPAuthRequestType             AVPCode = 274
	AVPAuthSessionState            AVPCode = 277
	AVPOriginStateID               AVPCode = 278
	AVPFailedAVP                   AVPCode = 279
	AVPProxyHost                   AVPCode = 280
	AVPErrorMessage                AVPCode = 281
	AVPRouteRecord                 AVPCode = 282
	AVPDestinationRealm            AVPCode = 283
	AVPProxyInfo                   AVPCode = 284
	AVPReAuthRequestType           AVPCode = 285
	AVPAuthorizationLifetime       AVPCode = 291
	AVPRedirectHost                AVPCode = 292
	AVPDestinationHost             AVPCode = 293
	AVPErrorReportingHost          AVPCode = 294
	AVPTerminationCause            AVPCode = 295
	AVPOriginRealm                 AVPCode = 296
	AVPExperimentalResult          AVPCode = 297
	AVPExperimentalResultCode      AVPCode = 298
	AVPInbandSecurityID            AVPCode = 299
	AVPDRMP                        AVPCode = 301
)

// IETF AVPs used by Cx and Rx (vendor 0).
const (
	AVPFramedIPAddress    AVPCode = 8   // RFC 7155
	AVPCalledStationID    AVPCode = 30  // RFC 7155
	AVPFramedInterfaceID  AVPCode = 96  // RFC 7155
	AVPFramedIPv6Prefix   AVPCode = 97  // RFC 7155
	AVPDigestRealm        AVPCode = 104 // RFC 4590
	AVPDigestQoP          AVPCode = 110 // RFC 4590
	AVPDigestAlgorithm    AVPCode = 111 // RFC 4590
	AVPDigestHA1          AVPCode = 121 // RFC 4590
	AVPSubscriptionID     AVPCode = 443 // RFC 4006
	AVPSubscriptionIDData AVPCode = 444 // RFC 4006
	AVPFinalUnitAction    AVPCode = 449 // RFC 4006
	AVPSubscriptionIDType AVPCode = 450 // RFC 4006
)

// Cx AVP codes (TS 29.229 §6.3, vendor 10415 unless noted).
const (
	AVPLineIdentifier                          AVPCode = vETSI | 500 // vendor ETSI 13019
	AVPVisitedNetworkIdentifier                AVPCode = v3GPP | 600
	AVPPublicIdentity                          AVPCode = v3GPP | 601
	AVPServerName                              AVPCode = v3GPP | 602
	AVPServerCapabilities                      AVPCode = v3GPP | 603
	AVPMandatoryCapability                     AVPCode = v3GPP | 604
	AVPOptionalCapability                      AVPCode = v3GPP | 605
	AVPUserData                                AVPCode = v3GPP | 606
	AVPSIPNumberAuthItems                      AVPCode = v3GPP | 607
	AVPSIPAuthenticationScheme                 AVPCode = v3GPP | 608
	AVPSIPAuthenticate                         AVPCode = v3GPP | 609
	AVPSIPAuthorization                        AVPCode = v3GPP | 610
	AVPSIPAuthenticationContext                AVPCode = v3GPP | 611
	AVPSIPAuthDataItem                         AVPCode = v3GPP | 612
	AVPSIPItemNumber                           AVPCode = v3GPP | 613
	AVPServerAssignmentType                    AVPCode = v3GPP | 614
	AVPDeregistrationReason                    AVPCode = v3GPP | 615
	AVPReasonCode                              AVPCode = v3GPP | 616
	AVPReasonInfo                              AVPCode = v3GPP | 617
	AVPChargingInformation                     AVPCode = v3GPP | 618
	AVPPrimaryEventChargingFunctionName        AVPCode = v3GPP | 619
	AVPSecondaryEventChargingFunctionName      AVPCode = v3GPP | 620
	AVPPrimaryChargingCollectionFunctionName   AVPCode = v3GPP | 621
	AVPSecondaryChargingCollectionFunctionName AVPCode = v3GPP | 622
	AVPUserAuthorizationType                   AVPCode = v3GPP | 623
	AVPUserDataAlreadyAvailable                AVPCode = v3GPP | 624
	AVPConfidentialityKey                      AVPCode = v3GPP | 625
	AVPIntegrityKey                            AVPCode = v3GPP | 626
	AVPSupportedFeatures                       AVPCode = v3GPP | 628
	AVPFeatureListID                           AVPCode = v3GPP | 629
	AVPFeatureList                             AVPCode = v3GPP | 630
	AVPSupportedApplications                   AVPCode = v3GPP | 631
	AVPAssociatedIdentities                    AVPCode = v3GPP | 632
	AVPOriginatingRequest                      AVPCode = v3GPP | 633
	AVPWildcardedPublicIdentity                AVPCode = v3GPP | 634
	AVPSIPDigestAuthenticate                   AVPCode = v3GPP | 635
	AVPUARFlags                                AVPCode = v3GPP | 637
	AVPLooseRouteIndication                    AVPCode = v3GPP | 638
	AVPSCSCFRestorationInfo                    AVPCode = v3GPP | 639
	AVPPath                                    AVPCode = v3GPP | 640
	AVPContact                                 AVPCode = v3GPP | 641
	AVPSubscriptionInfo                        AVPCode = v3GPP | 642
	AVPCallIDSIPHeader                         AVPCode = v3GPP | 643
	AVPFromSIPHeader                           AVPCode = v3GPP | 644
	AVPToSIPHeader                             AVPCode = v3GPP | 645
	AVPRecordRoute                             AVPCode = v3GPP | 646
	AVPAssociatedRegisteredIdentities          AVPCode = v3GPP | 647
	AVPMultipleRegistrationIndication          AVPCode = v3GPP | 648
	AVPRestorationInfo                         AVPCode = v3GPP | 649
	AVPSessionPriority                         AVPCode = v3GPP | 650
	AVPIdentityWithEmergencyRegistration       AVPCode = v3GPP | 651
	AVPPriviledgedSenderIndication             AVPCode = v3GPP | 652
	AVPLIAFlags                                AVPCode = v3GPP | 653
	AVPInitialCSeqSequenceNumber               AVPCode = v3GPP | 654
	AVPSARFlags                                AVPCode = v3GPP | 655
	AVPAllowedWAFWWSFIdentities                AVPCode = v3GPP | 656
	AVPWebRTCAuthenticationFunctionName        AVPCode = v3GPP | 657
	AVPWebRTCWebServerFunctionName             AVPCode = v3GPP | 658
	AVPRTRFlags                                AVPCode = v3GPP | 659
	AVPPCSCFSubscriptionInfo                   AVPCode = v3GPP | 660
	AVPRegistrationTimeOut                     AVPCode = v3GPP | 661
)

// Sh AVP codes (TS 29.329 §6.3, vendor 10415). Sh also uses Public-Identity,
// Server-Name, Supported-Features, Wildcarded-Public-Identity and
// Session-Priority with their Cx codes.
const (
	AVPWildcardedIMPU          AVPCode = v3GPP | 636
	AVPUserIdentity            AVPCode = v3GPP | 700
	AVPMSISDN                  AVPCode = v3GPP | 701
	AVPShUserData              AVPCode = v3GPP | 702
	AVPDataReference           AVPCode = v3GPP | 703
	AVPServiceIndication       AVPCode = v3GPP | 704
	AVPSubsReqType             AVPCode = v3GPP | 705
	AVPRequestedDomain         AVPCode = v3GPP | 706
	AVPCurrentLocation         AVPCode = v3GPP | 707
	AVPIdentitySet             AVPCode = v3GPP | 708
	AVPExpiryTime              AVPCode = v3GPP | 709
	AVPSendDataIndication      AVPCode = v3GPP | 710
	AVPDSAITag                 AVPCode = v3GPP | 711
	AVPOneTimeNotification     AVPCode = v3GPP | 712
	AVPRequestedNodes          AVPCode = v3GPP | 713
	AVPServingNodeIndication   AVPCode = v3GPP | 714
	AVPRepositoryDataID        AVPCode = v3GPP | 715
	AVPSequenceNumber          AVPCode = v3GPP | 716
	AVPPrePagingSupported      AVPCode = v3GPP | 717
	AVPLocalTimeZoneIndication AVPCode = v3GPP | 718
	AVPUDRFlags                AVPCode = v3GPP | 719
	AVPCallReferenceInfo       AVPCode = v3GPP | 720
	AVPCallReferenceNumber     AVPCode = v3GPP | 721
	AVPASNumber                AVPCode = v3GPP | 722
)

// Rx AVP codes (TS 29.214 §5.3 and imported ones, vendor 10415 unless noted).
const (
	AVP3GPPSGSNMCCMNC                       AVPCode = v3GPP | 18
	AVP3GPPUserLocationInfo                 AVPCode = v3GPP | 22
	AVP3GPPMSTimeZone                       AVPCode = v3GPP | 23
	AVPReservationPriority                  AVPCode = vETSI | 458 // vendor ETSI 13019
	AVPAbortCause                           AVPCode = v3GPP | 500
	AVPAccessNetworkChargingAddress         AVPCode = v3GPP | 501
	AVPAccessNetworkChargingIdentifier      AVPCode = v3GPP | 502
	AVPAccessNetworkChargingIdentifierValue AVPCode = v3GPP | 503
	AVPAFApplicationIdentifier              AVPCode = v3GPP | 504
	AVPAFChargingIdentifier                 AVPCode = v3GPP | 505
	AVPFlowDescription                      AVPCode = v3GPP | 507
	AVPFlowNumber                           AVPCode = v3GPP | 509
	AVPFlows                                AVPCode = v3GPP | 510
	AVPFlowStatus                           AVPCode = v3GPP | 511
	AVPFlowUsage                            AVPCode = v3GPP | 512
	AVPSpecificAction                       AVPCode = v3GPP | 513
	AVPMaxRequestedBandwidthDL              AVPCode = v3GPP | 515
	AVPMaxRequestedBandwidthUL              AVPCode = v3GPP | 516
	AVPMediaComponentDescription            AVPCode = v3GPP | 517
	AVPMediaComponentNumber                 AVPCode = v3GPP | 518
	AVPMediaSubComponent                    AVPCode = v3GPP | 519
	AVPMediaType                            AVPCode = v3GPP | 520
	AVPRRBandwidth                          AVPCode = v3GPP | 521
	AVPRSBandwidth                          AVPCode = v3GPP | 522
	AVPSIPForkingIndication                 AVPCode = v3GPP | 523
	AVPCodecData                            AVPCode = v3GPP | 524
	AVPServiceURN                           AVPCode = v3GPP | 525
	AVPAcceptableServiceInfo                AVPCode = v3GPP | 526
	AVPServiceInfoStatus                    AVPCode = v3GPP | 527
	AVPAFSignallingProtocol                 AVPCode = v3GPP | 529
	AVPRxRequestType                        AVPCode = v3GPP | 533
	AVPMinRequestedBandwidthDL              AVPCode = v3GPP | 534
	AVPMinRequestedBandwidthUL              AVPCode = v3GPP | 535
	AVPRequiredAccessInfo                   AVPCode = v3GPP | 536
	AVPIPDomainID                           AVPCode = v3GPP | 537
	AVPRetryInterval                        AVPCode = v3GPP | 541
	AVPContentVersion                       AVPCode = v3GPP | 552
	AVPIPCANType                            AVPCode = v3GPP | 1027
	AVPRATType                              AVPCode = v3GPP | 1032
	AVPSessionReleaseCause                  AVPCode = v3GPP | 1045
	AVPANGWAddress                          AVPCode = v3GPP | 1050
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
	DataRefAliasesRepositoryData uint32 = 20
	// DataRefIMSPrivateUserIdentity is 33 (18 is PSIActivation).
	DataRefIMSPrivateUserIdentity uint32 = 33
)

// Identity-Set values (TS 29.329 §6.3.10).
const (
	IdentitySetAll        uint32 = 0
	IdentitySetRegistered uint32 = 1
	IdentitySetImplicit   uint32 = 2
	IdentitySetAlias      uint32 = 3
)

// Send-Data-Indication values (TS 29.329 §6.3.17).
const (
	UserDataNotRequested uint32 = 0
	UserDataRequested    uint32 = 1
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
